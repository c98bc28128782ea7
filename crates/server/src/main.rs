//! The `pasaporte` binary: see the library for everything it does.

fn main() -> std::process::ExitCode {
    pasaporte::main()
}
