//! Scanning a barcode with the tablet's camera, where the browser has the Shape Detection API's
//! `BarcodeDetector` (Chrome on Android). The counter shows its camera button only where
//! [`barcode_detector_available`] says so.

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// How often a video frame is looked at for a barcode.
const FRAME_INTERVAL_MILLIS: i32 = 150;
/// How long the camera looks before giving up.
const GIVE_UP_AFTER_FRAMES: u32 = 200;

/// Why the camera found no code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    #[error("This browser cannot read barcodes with the camera.")]
    Unsupported,
    #[error("The camera could not be opened: {0}")]
    NoCamera(String),
    #[error("No barcode was seen. Hold the code closer to the camera and try again.")]
    NothingSeen,
}

/// Whether `BarcodeDetector` exists in this browser.
pub fn barcode_detector_available() -> bool {
    web_sys::window()
        .and_then(|window| Reflect::get(&window, &JsValue::from_str("BarcodeDetector")).ok())
        .is_some_and(|value| value.is_function())
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{error:?}"))
}

async fn pause(millis: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, millis);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Opens the back camera into `video`, reads frames until a barcode is seen, stops the camera
/// and returns the code's text.
pub async fn scan_with_camera(video: &web_sys::HtmlVideoElement) -> Result<String, CameraError> {
    let window = web_sys::window().ok_or(CameraError::Unsupported)?;
    let constructor: js_sys::Function =
        Reflect::get(&window, &JsValue::from_str("BarcodeDetector"))
            .ok()
            .and_then(|value| value.dyn_into().ok())
            .ok_or(CameraError::Unsupported)?;
    let detector = Reflect::construct(&constructor, &Array::new())
        .map_err(|e| CameraError::NoCamera(describe(e)))?;
    let detect: js_sys::Function = Reflect::get(&detector, &JsValue::from_str("detect"))
        .ok()
        .and_then(|value| value.dyn_into().ok())
        .ok_or(CameraError::Unsupported)?;

    let media = window
        .navigator()
        .media_devices()
        .map_err(|e| CameraError::NoCamera(describe(e)))?;
    let constraints = web_sys::MediaStreamConstraints::new();
    let video_constraints = Object::new();
    let _ = Reflect::set(
        &video_constraints,
        &JsValue::from_str("facingMode"),
        &JsValue::from_str("environment"),
    );
    constraints.set_video(&video_constraints);
    let stream: web_sys::MediaStream = JsFuture::from(
        media
            .get_user_media_with_constraints(&constraints)
            .map_err(|e| CameraError::NoCamera(describe(e)))?,
    )
    .await
    .map_err(|e| CameraError::NoCamera(describe(e)))?
    .unchecked_into();
    video.set_src_object(Some(&stream));
    if let Ok(playing) = video.play() {
        let _ = JsFuture::from(playing).await;
    }

    let mut found = None;
    for _ in 0..GIVE_UP_AFTER_FRAMES {
        if let Ok(promise) = detect.call1(&detector, video) {
            if let Ok(codes) = JsFuture::from(Promise::from(promise)).await {
                found = Array::from(&codes).iter().find_map(|code| {
                    Reflect::get(&code, &JsValue::from_str("rawValue"))
                        .ok()
                        .and_then(|value| value.as_string())
                });
            }
        }
        if found.is_some() {
            break;
        }
        pause(FRAME_INTERVAL_MILLIS).await;
    }
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
    video.set_src_object(None);
    found.ok_or(CameraError::NothingSeen)
}
