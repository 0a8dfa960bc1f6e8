// SPDX-License-Identifier: MPL-2.0
//! `POST /v1/uploads`: a video streamed to disk, its type checked by
//! GStreamer's type finder.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{Answer, ApiError, Caller, Ctx, DRAIN_BYTES, ok};
use crate::store;
use crate::{App, budget, crypto};

/// Parts an upload may have, and the size of a part other than `file`.
const MAX_PARTS: usize = 16;
const MAX_OTHER_PART: usize = 64 * 1024;

pub async fn upload(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    req: Request,
) -> Answer {
    let mut multipart = axum::extract::Multipart::from_request(req, &())
        .await
        .map_err(|e| {
            ApiError::invalid(
                &ctx,
                format!("expected a multipart/form-data body with a `file` field: {e}"),
            )
        })?;
    // The key's quota: what it keeps on disk, plus this upload.
    let quota = app.config.upload_quota_bytes;
    let used = app
        .store
        .upload_bytes(&key.id)
        .map_err(|e| ApiError::internal(&ctx, e))? as u64;
    let room = if quota == 0 {
        u64::MAX
    } else {
        quota.saturating_sub(used)
    };
    let over_quota = || {
        ApiError::new(
            &ctx,
            413,
            "quota_exceeded",
            format!(
                "this key keeps {used} bytes of uploads; the quota is {quota} (uploads are deleted after the retention period)"
            ),
        )
    };
    if room == 0 {
        return Err(over_quota());
    }
    let limit = app.config.max_upload_bytes;
    let mut parts = 0;
    loop {
        let mut field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::invalid(&ctx, format!("broken multipart body: {e}")))?
            .ok_or_else(|| ApiError::invalid(&ctx, "no `file` field in the upload"))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::invalid(
                &ctx,
                format!("more than {MAX_PARTS} parts in the upload"),
            ));
        }
        if field.name() != Some("file") {
            // Other parts are read and dropped, within a small limit.
            let name = field
                .name()
                .unwrap_or("")
                .chars()
                .take(64)
                .collect::<String>();
            let mut size = 0;
            while let Some(c) = field
                .chunk()
                .await
                .map_err(|e| ApiError::invalid(&ctx, format!("broken multipart body: {e}")))?
            {
                size += c.len();
                if size > MAX_OTHER_PART {
                    return Err(ApiError::invalid(
                        &ctx,
                        format!(
                            "the part `{name}` is over {MAX_OTHER_PART} bytes; an upload carries one `file`"
                        ),
                    ));
                }
            }
            continue;
        }
        // The client's name is shown back, never used on disk.
        let filename: String = field
            .file_name()
            .unwrap_or("upload")
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("upload")
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let id = crypto::random_hex(16);
        let part = app.uploads_dir().join(format!("{id}.part"));
        let result = receive(&ctx, field, &part, limit.min(room)).await;
        let (size, head) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                // Over the room left, not over the size limit: the quota.
                if e.code == "file_too_large" && room < limit {
                    return Err(over_quota());
                }
                return Err(e);
            }
        };
        let Some((content_type, ext)) = rbv_runner::sniff_video(&head) else {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::new(
                &ctx,
                400,
                "invalid_file_type",
                "invalid file type: the upload is not a video this service takes (mp4, mov, webm, avi)",
            ));
        };
        // The whole file is demuxed and parsed (no frame decoded): what is
        // not a readable video, or is over the server's caps, is refused now.
        let probed = {
            let part = part.clone();
            tokio::task::spawn_blocking(move || {
                rbv_runner::probe(&part, std::time::Duration::from_secs(120))
            })
            .await
            .map_err(|e| ApiError::internal(&ctx, e))?
        };
        let probe = match probed {
            Ok(p) => p,
            Err(f) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(ApiError::new(
                    &ctx,
                    400,
                    "invalid_file_type",
                    format!("invalid file type: the upload cannot be read as a video ({f})"),
                ));
            }
        };
        // A real video is mostly audio and video packets; a small file
        // padded out to fill a disk is not (over 1 MB that is no media, and
        // under a quarter that is).
        if size.saturating_sub(probe.media_bytes) > 1_000_000 && probe.media_bytes < size / 4 {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::new(
                &ctx,
                400,
                "invalid_file_type",
                format!(
                    "invalid file type: only {} of the upload's {size} bytes are audio or video",
                    probe.media_bytes
                ),
            ));
        }
        if let Err(why) = budget::check_input(
            &app.config,
            u64::from(probe.width),
            u64::from(probe.height),
            probe.frames,
            probe.seconds,
        ) {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::new(&ctx, 422, "unsupported_video", why));
        }
        let path = app
            .storage
            .keep_upload(&part, &format!("{id}.{ext}"))
            .await
            .map_err(|e| ApiError::internal(&ctx, e))?;
        let upload = store::Upload {
            id: id.clone(),
            filename: filename.clone(),
            content_type: content_type.into(),
            size: size as i64,
            path,
            width: i64::from(probe.width),
            height: i64::from(probe.height),
            frames: probe.frames as i64,
            seconds: probe.seconds,
        };
        if let Err(e) = app.store.insert_upload(&key.id, &upload) {
            // Surely not recorded (a commit whose answer was lost did record
            // it; a store that does not answer cannot say): nothing would
            // ever remove the kept file. Unsure, it stays (a leak, not a loss).
            if matches!(app.store.upload(&key.id, &id), Ok(None)) {
                let _ = app.storage.delete_upload(&upload.path).await;
            }
            return Err(ApiError::internal(&ctx, e));
        }
        return ok(json!({
            "success": true,
            "video_id": id,
            "video_url": format!("{}/uploads/{id}.{ext}", app.public_url),
            "filename": filename,
            "size": size,
            "content_type": content_type,
        }));
    }
}

/// Streams one field to `path`: (bytes, first 64 KiB).
async fn receive(
    ctx: &Ctx,
    mut field: axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
    limit: u64,
) -> Result<(u64, Vec<u8>), ApiError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|e| ApiError::internal(ctx, e))?;
    let mut size = 0u64;
    let mut head = Vec::new();
    let too_large = || {
        ApiError::new(
            ctx,
            400,
            "file_too_large",
            format!("file too large: the limit is {limit} bytes"),
        )
    };
    loop {
        let chunk: Option<Bytes> = field.chunk().await.map_err(|e| {
            if e.to_string().contains("limit") {
                too_large()
            } else {
                ApiError::invalid(ctx, format!("the upload broke off: {e}"))
            }
        })?;
        let Some(chunk) = chunk else { break };
        size += chunk.len() as u64;
        if size > limit {
            // Read on a little, so the client hears why.
            let mut drained = 0;
            while let Ok(Some(c)) = field.chunk().await {
                drained += c.len();
                if drained > DRAIN_BYTES {
                    break;
                }
            }
            return Err(too_large());
        }
        if head.len() < 64 * 1024 {
            let n = (64 * 1024 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..n]);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(ctx, e))?;
    }
    file.flush().await.map_err(|e| ApiError::internal(ctx, e))?;
    if size == 0 {
        return Err(ApiError::new(
            ctx,
            400,
            "invalid_file_type",
            "invalid file type: the upload is empty",
        ));
    }
    Ok((size, head))
}
