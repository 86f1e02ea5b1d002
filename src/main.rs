fn main() {
    std::process::exit(mailkeep::cli::main());
}
