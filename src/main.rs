fn main() {
    println!("twinbox");
}
