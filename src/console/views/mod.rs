//! The views: full-screen lists, each in its own file with its state, its
//! keys and its drawing. `App` shows one and routes to it.
//!
//! Adding a view is a file here and one line in `views!` below (and, when
//! it has keys of its own, a keymap context with its bindings).

pub mod destinations;
pub mod detail;
pub mod log;
pub mod packages;
pub mod policies;
pub mod software;
pub mod tasks;
pub mod triage;

use super::component::Component;

/// Declares the views: `View`, naming each, and `Views`, holding every
/// view's state (kept while another is shown). Tabs follow this order.
macro_rules! views {
    ($($id:ident => $field:ident: $ty:ty,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum View {
            $($id,)*
        }

        impl View {
            pub const ALL: &[View] = &[$(View::$id,)*];
        }

        #[derive(Debug, Default)]
        pub struct Views {
            $(pub $field: $ty,)*
        }

        impl Views {
            pub fn get(&self, v: View) -> &dyn Component {
                match v {
                    $(View::$id => &self.$field,)*
                }
            }

            pub fn get_mut(&mut self, v: View) -> &mut dyn Component {
                match v {
                    $(View::$id => &mut self.$field,)*
                }
            }
        }
    };
}

views! {
    Packages => packages: packages::Packages,
    Tasks => tasks: tasks::Tasks,
    TaskDetail => detail: detail::TaskDetail,
    Destinations => destinations: destinations::Destinations,
    Log => log: log::Log,
    Triage => triage: triage::Triage,
    Software => software: software::Software,
    Policies => policies: policies::Policies,
}
