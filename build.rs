// Rebuild when a migration is added: they are embedded with sqlx::migrate!.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
