//! The agent as a Windows service: `courier agent install-service` enrols
//! the agent (so a wrong token or an unreachable server is said at once, to
//! the admin installing it) and registers `courier.exe --data DIR agent
//! run-service` (or `courier-agent.exe --data DIR run-service`, whichever
//! program installed it) with the Service Control Manager: LocalSystem, started at
//! boot, restarted when it fails. The token is not on the service's command
//! line, where every local account could read it: enrolment has already
//! used it. The service answers stop and shutdown by ending the agent
//! cleanly, as Ctrl-C does in a console.

#[cfg(not(windows))]
use anyhow::Result;

use super::runtime::AgentConfig;

/// The service's name, as `sc` and the Services console show it.
pub const SERVICE_NAME: &str = "courier-agent";

#[cfg(not(windows))]
const WINDOWS_ONLY: &str = "the agent runs as a Windows service only on Windows; elsewhere run 'courier agent' under the system's service manager (docs/agent.md)";

#[cfg(not(windows))]
pub fn install(_cfg: &AgentConfig, _start: bool) -> Result<()> {
    anyhow::bail!(WINDOWS_ONLY)
}

#[cfg(not(windows))]
pub fn uninstall() -> Result<()> {
    anyhow::bail!(WINDOWS_ONLY)
}

#[cfg(not(windows))]
pub fn run(_cfg: AgentConfig) -> Result<()> {
    anyhow::bail!(WINDOWS_ONLY)
}

#[cfg(windows)]
pub use self::windows::{install, run, uninstall};

/// The service's command line after the program: `courier.exe` needs the
/// `agent` word, `courier-agent.exe` (the agent alone) takes the same
/// arguments without it.
#[cfg(any(windows, test))]
fn launch_arguments(exe: &std::path::Path, cfg: &AgentConfig) -> Vec<std::ffi::OsString> {
    let mut args = vec!["--data".into(), cfg.data.clone().into_os_string()];
    let alone = exe
        .file_stem()
        .is_some_and(|s| s.eq_ignore_ascii_case("courier-agent"));
    if !alone {
        args.push("agent".into());
    }
    args.extend([
        "run-service".into(),
        "--command-timeout".into(),
        cfg.command_timeout.as_secs().to_string().into(),
    ]);
    args
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_service_runs_whichever_program_installed_it() {
        let cfg = AgentConfig {
            data: "D".into(),
            server: None,
            token: None,
            name: None,
            command_timeout: Duration::from_secs(60),
        };
        let words = |exe: &str| -> Vec<String> {
            launch_arguments(Path::new(exe), &cfg)
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        let tail = ["run-service", "--command-timeout", "60"];
        let full = words("C/courier.exe");
        assert_eq!(full[..3], ["--data", "D", "agent"]);
        assert_eq!(full[3..], tail);
        let alone = words("C/courier-agent.exe");
        assert_eq!(alone[..2], ["--data", "D"]);
        assert_eq!(alone[2..], tail);
    }
}

#[cfg(windows)]
mod windows {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result, bail};
    use tokio::sync::Notify;
    use windows_service::service::{
        ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
        ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    use super::{AgentConfig, SERVICE_NAME};
    use crate::agent::runtime;

    /// ERROR_SERVICE_EXISTS, ERROR_SERVICE_DOES_NOT_EXIST and
    /// ERROR_SERVICE_DATABASE_LOCKED.
    const SERVICE_EXISTS: i32 = 1073;
    const NO_SUCH_SERVICE: i32 = 1060;
    const DATABASE_LOCKED: i32 = 1055;

    /// Enrols, registers the service and (when `start`) starts it.
    pub fn install(cfg: &AgentConfig, start: bool) -> Result<()> {
        let exe = std::env::current_exe().context("cannot tell where courier.exe is")?;
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .map_err(os_error)
        .context("cannot open the Service Control Manager (run as an administrator)")?;
        if manager
            .open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS)
            .is_ok()
        {
            bail!(
                "the service {SERVICE_NAME} is installed already; 'courier agent uninstall-service' removes it"
            );
        }
        let rt = runtime::builder().build()?;
        let (server, name) = rt.block_on(runtime::enrol_only(cfg))?;
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: "courier agent".into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe.clone(),
            launch_arguments: super::launch_arguments(&exe, cfg),
            dependencies: vec![],
            // LocalSystem: installers need it.
            account_name: None,
            account_password: None,
        };
        let service = manager
            .create_service(
                &info,
                ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
            )
            .map_err(|e| match os_code(&e) {
                Some(SERVICE_EXISTS) => anyhow::anyhow!(
                    "the service {SERVICE_NAME} is installed already; 'courier agent uninstall-service' removes it"
                ),
                _ => os_error(e).context("cannot register the service"),
            })?;
        let _ = service.set_description(
            "Installs, distributes and uninstalls the packages its courier server assigns",
        );
        // Restarted after 10 s, then 1 min, then every 5 min; the count
        // starts again after a day without failures. An agent that stops
        // with an error (not only one that crashes) counts as failed.
        let restart = |secs| ServiceAction {
            action_type: ServiceActionType::Restart,
            delay: Duration::from_secs(secs),
        };
        let restarts = service
            .update_failure_actions(ServiceFailureActions {
                reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
                reboot_msg: None,
                command: None,
                actions: Some(vec![restart(10), restart(60), restart(300)]),
            })
            .and_then(|()| service.set_failure_actions_on_non_crash_failures(true));
        if let Err(e) = restarts {
            eprintln!(
                "courier: warning: the service will not be restarted when it fails ({}); set it under Recovery in services.msc",
                os_error(e)
            );
        }
        println!(
            "enrolled with {server} as {name}; service {SERVICE_NAME} registered (LocalSystem, started at boot)"
        );
        println!("  program: {}", exe.display());
        println!("  data and log: {}", cfg.data.display());
        if start {
            start_service(&service)?;
            println!("started");
        }
        Ok(())
    }

    /// Starts the service, waiting out a database lock: the manager locks
    /// it while it starts the services set to start at boot.
    fn start_service(service: &windows_service::service::Service) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match service.start::<&str>(&[]) {
                Ok(()) => return Ok(()),
                Err(e) if os_code(&e) == Some(DATABASE_LOCKED) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => {
                    return Err(os_error(e).context("the service is registered but did not start"));
                }
            }
        }
    }

    /// Stops the service if it runs, and removes it.
    pub fn uninstall() -> Result<()> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(os_error)
            .context("cannot open the Service Control Manager (run as an administrator)")?;
        let service = manager
            .open_service(
                SERVICE_NAME,
                ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
            )
            .map_err(|e| match os_code(&e) {
                Some(NO_SUCH_SERVICE) => {
                    anyhow::anyhow!("the service {SERVICE_NAME} is not installed")
                }
                _ => os_error(e).context("cannot open the service"),
            })?;
        let state = || -> Result<ServiceState> {
            Ok(service.query_status().map_err(os_error)?.current_state)
        };
        if state()? != ServiceState::Stopped {
            let _ = service.stop();
            let deadline = Instant::now() + Duration::from_secs(60);
            while state()? != ServiceState::Stopped {
                if Instant::now() > deadline {
                    bail!("the service {SERVICE_NAME} did not stop within 60 s; not removed");
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        service
            .delete()
            .map_err(os_error)
            .context("cannot remove the service")?;
        println!("service {SERVICE_NAME} removed; the agent's data stays where it was");
        Ok(())
    }

    /// Runs the agent as the service, from the moment the manager starts it
    /// until it asks it to stop.
    pub fn run(cfg: AgentConfig) -> Result<()> {
        let failed = Arc::new(std::sync::Mutex::new(None::<String>));
        let result = {
            let failed = failed.clone();
            crate::win::service::dispatch(SERVICE_NAME, move || {
                if let Err(e) = serve(cfg.clone()) {
                    tracing::error!("the service stopped: {e:#}");
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
                }
            })
        };
        result.map_err(os_error).context("not started by the Service Control Manager (use 'courier agent install-service', or 'courier agent' to run in a console)")?;
        match failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => bail!(e),
            None => Ok(()),
        }
    }

    fn serve(cfg: AgentConfig) -> Result<()> {
        let stop = Arc::new(Notify::new());
        let asked = stop.clone();
        let status =
            service_control_handler::register(SERVICE_NAME, move |control| match control {
                ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
                    asked.notify_one();
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
                _ => ServiceControlHandlerResult::NotImplemented,
            })
            .map_err(os_error)?;
        let report = |state, accept, exit_code| {
            let _ = status.set_service_status(ServiceStatus {
                service_type: ServiceType::OWN_PROCESS,
                current_state: state,
                controls_accepted: accept,
                exit_code,
                checkpoint: 0,
                wait_hint: Duration::from_secs(30),
                process_id: None,
            });
        };
        report(
            ServiceState::Running,
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
            ServiceExitCode::Win32(0),
        );
        let rt = runtime::builder().build()?;
        let result = rt.block_on(runtime::run(cfg, async move { stop.notified().await }));
        report(
            ServiceState::Stopped,
            ServiceControlAccept::empty(),
            // A service-specific code: the manager counts it as a failure
            // and restarts the service.
            match &result {
                Ok(()) => ServiceExitCode::Win32(0),
                Err(_) => ServiceExitCode::ServiceSpecific(1),
            },
        );
        result
    }

    /// The error with what Windows said, which `windows_service::Error`
    /// keeps out of its own message.
    fn os_error(e: windows_service::Error) -> anyhow::Error {
        match e {
            windows_service::Error::Winapi(io) => anyhow::Error::new(io),
            other => anyhow::Error::new(other),
        }
    }

    fn os_code(e: &windows_service::Error) -> Option<i32> {
        match e {
            windows_service::Error::Winapi(io) => io.raw_os_error(),
            _ => None,
        }
    }
}
