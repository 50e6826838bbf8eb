fn main() {
    eprintln!("climcal CLI: under construction");
    std::process::exit(1);
}
