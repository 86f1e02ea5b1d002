//! Configuration: file + env + flags → resolved settings; accounts; credentials. Uses: model.
