use clap::Parser;

fn main() {
    let cli = luksify::cli::Cli::parse();
    let code = match luksify::app::run(cli) {
        Ok(code) => code,
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
