//! Mail file formats (Maildir, mboxrd, .eml): writers for export, readers for import. Uses: model.
