fn main() {
    // `sqlx::migrate!` embeds the migration folders at compile time.
    println!("cargo:rerun-if-changed=../migrations");
}
