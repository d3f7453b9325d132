//! A session's recording (`recording: true`, `BW_RECORDING`): its display grabbed by ffmpeg, or
//! for a headless session its page's screencast (the live view's, shared with viewers) fed to
//! ffmpeg; written in place as the artifact `recording.mp4` (fragmented, so what a crash leaves
//! plays), finished or discarded when the session closes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Session, SessionState};
use crate::artifacts::Artifacts;
use crate::live::hub::LiveHub;
use crate::recording::{Limits, Recorder, RecordingError, Source};

/// The artifact a recording is written as.
pub const ARTIFACT: &str = "recording.mp4";
/// Size of a headless session's video when it sets no viewport (the browser's window).
const HEADLESS_SIZE: (u32, u32) = (1280, 900);

/// Which recordings are kept when their session closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Always,
    /// Only a session that failed, was blocked at some point, or ended without a confirmed
    /// submission.
    OnFailure,
}

/// A session's recording as asked for: where ffmpeg is, its bounds, what is kept.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ffmpeg: PathBuf,
    pub limits: Limits,
    pub keep: Keep,
}

/// A running recording.
pub(crate) struct Active {
    recorder: Recorder,
    keep: Keep,
    /// A headless session's screencast, held for as long as the recording runs.
    _hub: Option<Arc<LiveHub>>,
}

/// Starts recording `session` (its display, else its page) into its artifacts.
pub(super) fn start(session: &Session, plan: &Plan, artifacts: &Artifacts) -> Result<(), RecordingError> {
    let path = artifacts
        .local(session.id, ARTIFACT)
        .map_err(|e| RecordingError::Output { path: ARTIFACT.into(), source: std::io::Error::other(e.to_string()) })?;
    let display = session.display_name();
    let (source, hub) = match display {
        Some(display) => (Source::Display { display, size: crate::browser::display::SCREEN }, None),
        None => {
            let hub = session.live_hub(|| {
                LiveHub::start(
                    session.cdp_endpoint().to_string(),
                    session.page_target().to_string(),
                    session.browser_context().map(str::to_string),
                )
            });
            let acks = hub.clone();
            let source = Source::Frames {
                frames: hub.frames(),
                on_frame: Box::new(move || acks.frame_sent()),
                size: session.viewport.unwrap_or(HEADLESS_SIZE),
            };
            (source, Some(hub))
        }
    };
    let recorder = Recorder::start(&plan.ffmpeg, source, path, plan.limits)?;
    *session.recording.lock().unwrap() = Some(Active { recorder, keep: plan.keep, _hub: hub });
    *session.recording_url.lock().unwrap() = Some(artifacts.url(session.id, ARTIFACT));
    Ok(())
}

/// Ends `session`'s recording as it closes in `state`: finished and published when kept,
/// else discarded. Sets the session's recording URL to where the video is, or none.
pub(super) async fn end(session: &Session, state: SessionState, artifacts: &Artifacts) {
    let Some(active) = session.recording.lock().unwrap().take() else { return };
    let failed = state == SessionState::Failed
        || session.blocked_once.load(Ordering::SeqCst)
        || !session.submitted.load(Ordering::SeqCst);
    let kept = if active.keep == Keep::Always || failed {
        match active.recorder.finish().await {
            Ok(video) => {
                metrics::counter!("bw_recordings_total", "outcome" => "kept").increment(1);
                metrics::histogram!("bw_recording_bytes").record(video.bytes as f64);
                if let Some(why) = &video.interrupted {
                    tracing::warn!(session_id = %session.id, why, "the recording was interrupted; what was written is kept");
                }
                artifacts.publish(session.id, ARTIFACT).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    } else {
        active.recorder.discard().await;
        metrics::counter!("bw_recordings_total", "outcome" => "discarded").increment(1);
        Err("not kept (a confirmed submission)".into())
    };
    if let Err(why) = &kept {
        tracing::debug!(session_id = %session.id, why, "no recording kept");
    }
    *session.recording_url.lock().unwrap() = kept.ok();
}
