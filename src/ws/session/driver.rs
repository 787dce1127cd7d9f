//! The session as a [`Driver`](crate::Driver): its inherent methods.

use super::Session;
use crate::ws::error::Error;
use crate::ws::message::Event;

crate::driver::by_inherent_methods!(Session, Event, Error);
