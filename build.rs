fn main() {
    // Rebuild when a migration is added: they are embedded with sqlx::migrate!.
    println!("cargo:rerun-if-changed=migrations");

    // Release binaries for Linux/glibc pack their relative relocations (DT_RELR): about 40,000
    // pointers fixed up at start-up would otherwise be read from a 1 MB table that stays
    // resident for the life of the daemon (BENCHMARKS.md). The binary then needs glibc >= 2.36,
    // so this is done only for a native build on such a glibc (an older binutils warns and
    // ignores the flag). FTGUARD_NO_RELR=1 turns it off, e.g. to ship to older systems.
    println!("cargo:rerun-if-env-changed=FTGUARD_NO_RELR");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let native_gnu = env("TARGET") == env("HOST") && env("TARGET").ends_with("-linux-gnu");
    if env("PROFILE") == "release"
        && native_gnu
        && std::env::var_os("FTGUARD_NO_RELR").is_none()
        && glibc_at_least(2, 36)
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (major, minor)
}
