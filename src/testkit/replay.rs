//! Replaying one side of a transcript against a fresh machine.

use super::{Action, Side, Transcript};
use crate::Driver;
use std::fmt::Debug;
use std::time::Instant;

/// Where a replay parted from its [`Transcript`]; every variant names the
/// transcript line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The machine wrote other bytes than the transcript says.
    #[error(
        "line {line}: wrote {} bytes where the transcript has {}, first difference at byte {}",
        got.len(),
        expected.len(),
        first_difference(expected, got)
    )]
    Output {
        /// The transcript line.
        line: usize,
        /// The bytes recorded.
        expected: Vec<u8>,
        /// The bytes written now.
        got: Vec<u8>,
    },
    /// The machine reported another event, or none.
    #[error("line {line}: expected event {expected}, got {got:?}")]
    Event {
        /// The transcript line.
        line: usize,
        /// The `Debug` form recorded.
        expected: String,
        /// The `Debug` form of the event reported now, if any.
        got: Option<String>,
    },
    /// The machine took fewer of the recorded bytes than it did.
    #[error("line {line}: took {taken} of {offered} bytes")]
    NotTaken {
        /// The transcript line.
        line: usize,
        /// The bytes offered.
        offered: usize,
        /// The bytes taken.
        taken: usize,
    },
    /// The machine failed (or did not) otherwise than recorded.
    #[error("line {line}: expected error {expected:?}, got {got:?}")]
    Error {
        /// The transcript line.
        line: usize,
        /// The `Display` form recorded, if the original failed there.
        expected: Option<String>,
        /// The `Display` form of the error returned now, if any.
        got: Option<String>,
    },
    /// The transcript has a command, and no hook was given to run it.
    #[error("line {line}: command {label:?} and nothing to run it")]
    Call {
        /// The transcript line.
        line: usize,
        /// The command's label.
        label: String,
    },
}

/// Runs a recorded command on the machine being replayed.
type Hook<'h, D> = &'h mut dyn FnMut(&mut D, &str);

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

impl Transcript {
    /// Feeds `side`'s recorded inputs to `machine` at their recorded times
    /// (`handle_timeout`, `receive`, `receive_eof`, in their order) and
    /// checks at each recorded output that it writes the same bytes,
    /// reports the same events (compared by their `Debug` forms) and fails
    /// with the same errors (by their `Display` forms). Returns the machine
    /// once every entry matched, or where it first parted.
    ///
    /// The transcript must start before the original machine's first
    /// input, its randomness must be seeded the same, and what it does after
    /// the last entry is not checked. A transcript with commands
    /// ([`Action::Call`]) needs [`Transcript::replay_with`].
    pub fn replay<D: Driver>(&self, side: Side, machine: D) -> Result<D, ReplayError>
    where
        D::Event: Debug,
    {
        self.run(side, machine, None)
    }

    /// [`Transcript::replay`], with `call` running each recorded command
    /// (given the machine and the command's label) when its turn comes.
    pub fn replay_with<D: Driver>(
        &self,
        side: Side,
        machine: D,
        mut call: impl FnMut(&mut D, &str),
    ) -> Result<D, ReplayError>
    where
        D::Event: Debug,
    {
        self.run(side, machine, Some(&mut call))
    }

    /// [`Transcript::replay`], panicking with the mismatch.
    ///
    /// # Panics
    ///
    /// When the replay parts from the transcript.
    #[track_caller]
    pub fn assert_replays<D: Driver>(&self, side: Side, machine: D) -> D
    where
        D::Event: Debug,
    {
        self.replay(side, machine)
            .unwrap_or_else(|e| panic!("replay of side {side:?} failed: {e}"))
    }

    /// [`Transcript::replay_with`], panicking with the mismatch.
    ///
    /// # Panics
    ///
    /// When the replay parts from the transcript.
    #[track_caller]
    pub fn assert_replays_with<D: Driver>(
        &self,
        side: Side,
        machine: D,
        call: impl FnMut(&mut D, &str),
    ) -> D
    where
        D::Event: Debug,
    {
        self.replay_with(side, machine, call)
            .unwrap_or_else(|e| panic!("replay of side {side:?} failed: {e}"))
    }

    fn run<D: Driver>(
        &self,
        side: Side,
        mut machine: D,
        mut call: Option<Hook<'_, D>>,
    ) -> Result<D, ReplayError>
    where
        D::Event: Debug,
    {
        let start = Instant::now();
        let mut steps = self
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.side == side)
            .map(|(i, e)| (self.line_of(i), e))
            .peekable();
        while let Some((line, entry)) = steps.next() {
            // The error the original returned right after this input, if any.
            let mut recorded_error = || match steps.peek() {
                Some((_, next)) => match &next.action {
                    Action::Error(text) => {
                        let text = text.clone();
                        steps.next();
                        Some(text)
                    }
                    _ => None,
                },
                None => None,
            };
            match &entry.action {
                Action::Tick => machine.handle_timeout(start + entry.at),
                Action::Read(bytes) => {
                    let result = machine.receive(bytes);
                    let expected = recorded_error();
                    match result {
                        Ok(taken) if expected.is_none() => {
                            if taken != bytes.len() {
                                return Err(ReplayError::NotTaken {
                                    line,
                                    offered: bytes.len(),
                                    taken,
                                });
                            }
                        }
                        Ok(_) => {
                            return Err(ReplayError::Error {
                                line,
                                expected,
                                got: None,
                            })
                        }
                        Err(e) => check_error(line, expected, &e)?,
                    }
                }
                Action::Eof => {
                    let result = machine.receive_eof();
                    let expected = recorded_error();
                    match result {
                        Ok(()) if expected.is_none() => {}
                        Ok(()) => {
                            return Err(ReplayError::Error {
                                line,
                                expected,
                                got: None,
                            })
                        }
                        Err(e) => check_error(line, expected, &e)?,
                    }
                }
                Action::Wrote(bytes) => {
                    let mut got = Vec::new();
                    machine.poll_transmit(&mut got);
                    if &got != bytes {
                        return Err(ReplayError::Output {
                            line,
                            expected: bytes.clone(),
                            got,
                        });
                    }
                }
                Action::Event(text) => {
                    let got = machine.poll_event().map(|e| format!("{e:?}"));
                    if got.as_ref() != Some(text) {
                        return Err(ReplayError::Event {
                            line,
                            expected: text.clone(),
                            got,
                        });
                    }
                }
                Action::Error(text) => {
                    return Err(ReplayError::Error {
                        line,
                        expected: Some(text.clone()),
                        got: None,
                    })
                }
                Action::Call(label) => match call.as_mut() {
                    Some(call) => call(&mut machine, label),
                    None => {
                        return Err(ReplayError::Call {
                            line,
                            label: label.clone(),
                        })
                    }
                },
            }
        }
        Ok(machine)
    }
}

fn check_error(
    line: usize,
    expected: Option<String>,
    got: &dyn std::error::Error,
) -> Result<(), ReplayError> {
    let got = got.to_string();
    if expected.as_ref() == Some(&got) {
        Ok(())
    } else {
        Err(ReplayError::Error {
            line,
            expected,
            got: Some(got),
        })
    }
}
