//! Overlays: what opens over a view and has the keys while open. Each
//! owns its state, keys and drawing; `Mode` says which one is open.

pub mod confirm;
pub mod help;
pub mod output;
pub mod package_form;
pub mod policy_form;
pub mod prompt;
pub mod task_form;

use super::component::{Effect, Overlay};
use crate::api::ApiError;
use crate::model::Level;

// The request types the forms fill in, imported in this one place.
use crate::api::{AddPackage, AddPolicy, CreateTask, EditPackage, EditPolicy};

/// Which overlay is open, if any.
#[derive(Debug)]
pub enum Mode {
    Normal,
    Filter(prompt::Filter),
    Command(prompt::CommandLine),
    Help(help::Help),
    Confirm(confirm::Confirm),
    PackageForm(Box<package_form::PackageForm>),
    TaskForm(Box<task_form::TaskForm>),
    PolicyForm(Box<policy_form::PolicyForm>),
    Output(Box<output::OutputPane>),
}

impl Mode {
    pub fn overlay(&self) -> Option<&dyn Overlay> {
        match self {
            Mode::Normal => None,
            Mode::Filter(o) => Some(o),
            Mode::Command(o) => Some(o),
            Mode::Help(o) => Some(o),
            Mode::Confirm(o) => Some(o),
            Mode::PackageForm(o) => Some(o.as_ref()),
            Mode::TaskForm(o) => Some(o.as_ref()),
            Mode::PolicyForm(o) => Some(o.as_ref()),
            Mode::Output(o) => Some(o.as_ref()),
        }
    }

    pub fn overlay_mut(&mut self) -> Option<&mut dyn Overlay> {
        match self {
            Mode::Normal => None,
            Mode::Filter(o) => Some(o),
            Mode::Command(o) => Some(o),
            Mode::Help(o) => Some(o),
            Mode::Confirm(o) => Some(o),
            Mode::PackageForm(o) => Some(o.as_mut()),
            Mode::TaskForm(o) => Some(o.as_mut()),
            Mode::PolicyForm(o) => Some(o.as_mut()),
            Mode::Output(o) => Some(o.as_mut()),
        }
    }
}

/// A form's answer from the server: on success the form closes and the
/// line is shown; a refusal goes to `refused`, which shows it in the form
/// (nothing typed is lost). `pending` says whether the form still waits
/// for this answer; one that closed before its answer came only shows it.
pub fn form_answer(
    pending: bool,
    r: Result<String, ApiError>,
    refused: impl FnOnce(String),
) -> Effect {
    match r {
        Ok(done) if pending => Effect::All(vec![Effect::Close, Effect::info(done)]),
        Ok(done) => Effect::info(done),
        Err(e) if pending => {
            refused(e.message);
            Effect::None
        }
        Err(e) => Effect::Flash(Level::Error, e.message),
    }
}
