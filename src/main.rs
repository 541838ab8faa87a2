//! The `twinbox` command.

fn main() {
    let args = twinbox::cli::args_from_env();
    std::process::exit(twinbox::cli::run(args));
}
