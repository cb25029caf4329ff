//! The `crashfuzz` binary: the entry points of its children (writers, their fork server, templates, load burners, `__sql`),
//! and the command line.

#[cfg(not(feature = "bundled"))]
mod sqlite_compat;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Writers are this binary re-executed; dispatch before anything else so a writer starts
    // in as little time as possible and never touches the driver's machinery.
    if args.get(1).map(String::as_str) == Some(crashfuzz::writer::protocol::WRITER_SUBCOMMAND) {
        let config = args.get(2).map(String::as_str).unwrap_or("");
        std::process::exit(crashfuzz::writer::child::main(config));
    }
    if args.get(1).map(String::as_str) == Some(crashfuzz::writer::fork_server::FORK_SERVER_SUBCOMMAND) {
        let parent = args.get(2).map(String::as_str).unwrap_or("");
        std::process::exit(crashfuzz::writer::fork_server::serve(parent));
    }
    if args.get(1).map(String::as_str) == Some(crashfuzz::writer::program::TEMPLATE_SUBCOMMAND) {
        let request = args.get(2).map(String::as_str).unwrap_or("");
        std::process::exit(crashfuzz::writer::program::template_main(request));
    }
    if args.get(1).map(String::as_str) == Some(crashfuzz::fault::load::BURNER_SUBCOMMAND) {
        std::process::exit(crashfuzz::fault::load::burner_main(&args[2..]));
    }
    if args.get(1).map(String::as_str) == Some(crashfuzz::sqlite::child::SQL_SUBCOMMAND) {
        std::process::exit(crashfuzz::sqlite::child::child_main(&args[2..]));
    }
    std::process::exit(crashfuzz::cli::main(args));
}
