// placeholder until the engine benches land
fn main() {}
