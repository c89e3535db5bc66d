//! Reading a container's, a service's or a task's log stream: the engine's options for a
//! [`LogsRequest`], and each line handed on with the stream it came from.

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt as _;

use super::engine_error;
use crate::engine::{LogStream, LogsRequest, RuntimeError};

/// The engine's log options for `req` (stdout and stderr both).
pub(super) fn logs_options(req: LogsRequest) -> bollard::query_parameters::LogsOptions {
    let mut options = LogsOptionsBuilder::default().stdout(true).stderr(true).follow(req.follow);
    if let Some(since) = req.since {
        options = options.since(i32::try_from(since).unwrap_or(i32::MAX));
    }
    if let Some(tail) = req.tail {
        options = options.tail(&tail.to_string());
    }
    options.build()
}

/// Hands each line of a log stream (a container's, a service's or a task's) to `on_line`, with
/// the stream it came from.
pub(super) async fn forward_lines(
    stream: impl futures_util::Stream<Item = Result<LogOutput, BollardError>>,
    on_line: &mut dyn FnMut(LogStream, &str),
    subject: &str,
) -> Result<(), RuntimeError> {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let (which, message) = match item {
            Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (LogStream::Stdout, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => return Err(engine_error("read logs of", subject, e)),
        };
        for line in String::from_utf8_lossy(&message).lines() {
            on_line(which, line);
        }
    }
    Ok(())
}

/// The last `lines` lines of a log stream, stdout and stderr as they came.
pub(super) async fn tail_lines(
    stream: impl futures_util::Stream<Item = Result<LogOutput, BollardError>>,
    lines: usize,
    subject: &str,
) -> Result<Vec<String>, RuntimeError> {
    let mut all = Vec::new();
    forward_lines(stream, &mut |_, l| all.push(l.to_owned()), subject).await?;
    Ok(all.split_off(all.len().saturating_sub(lines)))
}
