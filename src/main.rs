use clap::Parser;

fn main() {
    let cli = luksify::cli::Cli::parse();
    let code = match luksify::app::run(cli) {
        Ok(code) => code,
        // `luksify probe --json | head` is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<serde_json::Error>()
                        .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
            }) =>
        {
            luksify::app::exit::OK
        }
        Err(e) => {
            eprintln!("luksify: {e:#}");
            if e.downcast_ref::<luksify::app::Refused>().is_some() {
                luksify::app::exit::REFUSED
            } else {
                luksify::app::exit::ERROR
            }
        }
    };
    std::process::exit(code);
}
