fn main() {
    mailkeep::heap::bound();
    std::process::exit(mailkeep::cli::main());
}
