// SPDX-License-Identifier: MPL-2.0
//! The contract's names, typed: the models users know from the service, the
//! output formats and a job's states. The element, the client, the server
//! and the command all use these, so a name is spelled in one place.

use std::fmt;
use std::str::FromStr;

/// A model, by the name the service gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ModelName {
    /// u2net: salient objects, the service's default.
    #[default]
    Original,
    /// u2netp: salient objects, lighter.
    Light,
    /// ISNet: the best edges; seconds a frame on a CPU.
    Pro,
    /// MediaPipe selfie segmentation: people, real time.
    Human,
}

impl ModelName {
    pub const ALL: [ModelName; 4] = [
        ModelName::Original,
        ModelName::Light,
        ModelName::Pro,
        ModelName::Human,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ModelName::Original => "original",
            ModelName::Light => "light",
            ModelName::Pro => "pro",
            ModelName::Human => "human",
        }
    }

    /// Credits per minute of video, as the service lists them.
    pub fn credits_per_minute(self) -> f64 {
        match self {
            ModelName::Pro => 180.0,
            ModelName::Original => 60.0,
            ModelName::Light | ModelName::Human => 45.0,
        }
    }

    /// The names, comma-separated, for messages that list the choices.
    pub fn names() -> String {
        list(ModelName::ALL.map(ModelName::as_str))
    }

    /// Whether a frame takes seconds rather than milliseconds on a CPU
    /// (pro and original): such jobs are kept apart from the light ones.
    pub fn is_heavy(self) -> bool {
        matches!(self, ModelName::Pro | ModelName::Original)
    }
}

impl FromStr for ModelName {
    type Err = String;

    fn from_str(s: &str) -> Result<ModelName, String> {
        ModelName::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("model `{s}` is not one of the service's: {}", Self::names()))
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job's output file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputFormat {
    /// VP9 with alpha when transparent, VP8 otherwise (the service's default).
    #[default]
    Webm,
    /// ProRes: 4444 with alpha, 422 HQ when opaque.
    Mov,
    /// H.264: no alpha.
    Mp4,
    Gif,
    /// Animated WebP.
    Webp,
    /// One PNG per frame in a .zip.
    PngSequence,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 6] = [
        OutputFormat::Webm,
        OutputFormat::Mov,
        OutputFormat::Mp4,
        OutputFormat::Gif,
        OutputFormat::Webp,
        OutputFormat::PngSequence,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Webm => "webm",
            OutputFormat::Mov => "mov",
            OutputFormat::Mp4 => "mp4",
            OutputFormat::Gif => "gif",
            OutputFormat::Webp => "webp",
            OutputFormat::PngSequence => "png_sequence",
        }
    }

    /// The names, comma-separated, for messages that list the choices.
    pub fn names() -> String {
        list(OutputFormat::ALL.map(OutputFormat::as_str))
    }

    /// The output file's extension.
    pub const fn extension(self) -> &'static str {
        match self {
            OutputFormat::PngSequence => "zip",
            other => other.as_str(),
        }
    }

    /// The output file's MIME type.
    pub const fn mime(self) -> &'static str {
        match self {
            OutputFormat::Webm => "video/webm",
            OutputFormat::Mov => "video/quicktime",
            OutputFormat::Mp4 => "video/mp4",
            OutputFormat::Gif => "image/gif",
            OutputFormat::Webp => "image/webp",
            OutputFormat::PngSequence => "application/zip",
        }
    }

    /// Whether the format can hold transparency (all but mp4).
    pub const fn keeps_alpha(self) -> bool {
        !matches!(self, OutputFormat::Mp4)
    }

    /// The format a file name's extension asks for (`zip` for PNG frames).
    pub fn from_extension(ext: &str) -> Option<OutputFormat> {
        match ext {
            "zip" => Some(OutputFormat::PngSequence),
            e => e.parse().ok().filter(|f| *f != OutputFormat::PngSequence),
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<OutputFormat, String> {
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "output format `{s}` is not one of the service's: {}",
                    Self::names()
                )
            })
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's state. Every state that is not terminal counts as in progress,
/// including ones this client does not know yet (`Other`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum JobStatus {
    /// A draft: made, not started.
    #[default]
    Created,
    /// Queued.
    Pending,
    Processing,
    Completed,
    Failed,
    Other(String),
}

impl JobStatus {
    /// The states `rbv serve` uses, in the order a job goes through them.
    pub const KNOWN: [JobStatus; 5] = [
        JobStatus::Created,
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
    ];

    /// Reads a state as the service or an older server spells it
    /// (`queued`, `running`, `succeeded` and `error` too).
    pub fn parse(s: &str) -> JobStatus {
        match s {
            "created" => JobStatus::Created,
            "pending" | "queued" => JobStatus::Pending,
            "processing" | "running" => JobStatus::Processing,
            "completed" | "succeeded" => JobStatus::Completed,
            "failed" | "error" => JobStatus::Failed,
            other => JobStatus::Other(other.to_owned()),
        }
    }

    /// One of [`JobStatus::KNOWN`] by its exact name (a `status` filter).
    pub fn known(s: &str) -> Result<JobStatus, String> {
        JobStatus::KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "status `{s}` is not one of {}",
                    list(JobStatus::KNOWN.map(|k| k.as_str().to_owned()))
                )
            })
    }

    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Other(s) => s,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn list<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    names
        .into_iter()
        .map(|n| n.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refusals_list_the_choices() {
        for m in ModelName::ALL {
            assert_eq!(m.as_str().parse::<ModelName>(), Ok(m));
        }
        assert_eq!(
            "huge".parse::<ModelName>().unwrap_err(),
            "model `huge` is not one of the service's: original, light, pro, human"
        );
        for f in OutputFormat::ALL {
            assert_eq!(f.as_str().parse::<OutputFormat>(), Ok(f));
            assert_eq!(OutputFormat::from_extension(f.extension()), Some(f));
        }
        assert!(
            "avi"
                .parse::<OutputFormat>()
                .unwrap_err()
                .contains("webm, mov, mp4, gif, webp, png_sequence")
        );
        assert_eq!(OutputFormat::from_extension("png_sequence"), None);
        assert!(!OutputFormat::Mp4.keeps_alpha() && OutputFormat::Mov.keeps_alpha());
    }

    #[test]
    fn statuses_read_both_spellings() {
        assert_eq!(JobStatus::parse("queued"), JobStatus::Pending);
        assert_eq!(JobStatus::parse("succeeded"), JobStatus::Completed);
        assert!(!JobStatus::parse("warming_up").is_terminal());
        assert_eq!(JobStatus::known("failed"), Ok(JobStatus::Failed));
        assert!(
            JobStatus::known("queued")
                .unwrap_err()
                .contains("created, pending")
        );
        assert!(ModelName::Pro.is_heavy() && !ModelName::Human.is_heavy());
    }
}
