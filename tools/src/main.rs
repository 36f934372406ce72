fn main() {
    println!("xesvm {}", xesvm::VERSION);
}
