//! The session as a [`Driver`](crate::Driver): its inherent methods.

use super::Session;
use crate::ws::error::Error;
use crate::ws::message::Event;
use std::time::Instant;

impl crate::Driver for Session {
    type Event = Event;
    type Error = Error;

    fn receive(&mut self, data: &[u8]) -> Result<usize, Error> {
        Session::receive(self, data)
    }
    fn receive_eof(&mut self) -> Result<(), Error> {
        Session::receive_eof(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Session::poll_event(self)
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        Session::poll_transmit(self, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now)
    }
    fn is_finished(&self) -> bool {
        Session::is_finished(self)
    }
}
