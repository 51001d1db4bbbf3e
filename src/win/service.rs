//! The entry point the Service Control Manager calls. `windows-service`
//! generates it as an `extern "system"` function reading raw arguments;
//! it lives here, with the crate's other unsafe code, and hands over to a
//! safe body.

use std::ffi::OsString;
use std::sync::OnceLock;

use windows_service::{define_windows_service, service_dispatcher};

type Body = Box<dyn Fn() + Send + Sync>;

static BODY: OnceLock<Body> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    if let Some(body) = BODY.get() {
        body();
    }
}

/// Connects this process to the Service Control Manager as the service
/// `name` and runs `body` on the thread the manager starts for it;
/// returns when the service has stopped. Fails at once when the process
/// was not started by the manager.
pub fn dispatch(
    name: &str,
    body: impl Fn() + Send + Sync + 'static,
) -> windows_service::Result<()> {
    let _ = BODY.set(Box::new(body));
    service_dispatcher::start(name, ffi_service_main)
}
