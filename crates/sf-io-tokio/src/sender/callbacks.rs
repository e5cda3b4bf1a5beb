//! The progress and error handlers, run on their own dispatcher thread so a
//! slow handler never stalls the I/O task or the producer.

use std::sync::mpsc;
use std::thread::JoinHandle;

use sf_core::errors::SenderError;
use sf_core::Fsn;

/// Called with the acknowledged FSN each time it advances.
pub type ProgressHandler = Box<dyn FnMut(Fsn) + Send + 'static>;
/// Called with every error notification of the engine's inbox
/// (sf-client §14.6): HALT and DROP_AND_CONTINUE alike.
pub type ErrorHandler = Box<dyn FnMut(&SenderError) + Send + 'static>;

/// What the I/O task hands to the dispatcher.
#[derive(Debug)]
pub(crate) enum Event {
    Progress(Fsn),
    Error(SenderError),
}

/// The sending side the I/O task holds; dropping it ends the dispatcher.
pub(crate) type EventSender = mpsc::Sender<Event>;

/// The handler for errors when the user installs none: logging is the
/// default, never silence. The I/O task already logs every notification at
/// ERROR (see `driver`), so the default handler has nothing left to do.
fn default_error_handler() -> ErrorHandler {
    Box::new(|_e: &SenderError| {})
}

/// Starts the dispatcher thread. Events are delivered in the order the
/// engine produced them.
pub(crate) fn spawn_dispatcher(
    mut progress: Option<ProgressHandler>,
    error: Option<ErrorHandler>,
) -> std::io::Result<(EventSender, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Event>();
    let mut error = error.unwrap_or_else(default_error_handler);
    let handle = std::thread::Builder::new()
        .name("qwp-sf-callbacks".into())
        .spawn(move || {
            while let Ok(event) = rx.recv() {
                match event {
                    Event::Progress(fsn) => {
                        if let Some(p) = progress.as_mut() {
                            p(fsn);
                        }
                    }
                    Event::Error(e) => error(&e),
                }
            }
        })?;
    Ok((tx, handle))
}
