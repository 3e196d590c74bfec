fn main() {
    // Rebuild when a migration is added: they are embedded with sqlx::migrate!.
    println!("cargo:rerun-if-changed=migrations");

    // Release binaries for Linux/glibc pack their relative relocations (DT_RELR): about 40,000
    // pointers fixed up at start-up would otherwise be read from a 1 MB table that stays
    // resident for the life of the daemon. Needs binutils >= 2.38 (an older ld warns and
    // ignores it) and glibc >= 2.36 at run time. FTGUARD_NO_RELR=1 turns it off.
    println!("cargo:rerun-if-env-changed=FTGUARD_NO_RELR");
    let target = std::env::var("TARGET").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if release && target.ends_with("-linux-gnu") && std::env::var_os("FTGUARD_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
