//! Telling systemd what the daemon is doing (`sd_notify`, through the `sd-notify` crate). Nothing
//! is sent when `$NOTIFY_SOCKET` is unset; a failure is logged, never fatal.

use sd_notify::NotifyState;

/// Sends one set of states (`READY=1`, `STATUS=...`, ...).
pub fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// `RELOADING=1` with the `MONOTONIC_USEC` systemd requires beside it (`Type=notify-reload`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(e) => tracing::warn!(error = %e, "sd_notify: no monotonic clock for RELOADING=1"),
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if it is meant for us.
pub fn watchdog_interval() -> Option<std::time::Duration> {
    sd_notify::watchdog_enabled()
}
