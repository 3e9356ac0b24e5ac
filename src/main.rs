fn main() {
    let c = sweep::job::JobConfig::default();
    println!("{}", c.label());
}
