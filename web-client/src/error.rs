//! Errors as JavaScript sees them: an `Error` whose `message` is for people and whose `code`
//! property is stable for programs.

use qpq_client::ClientError;
use wasm_bindgen::JsValue;

/// Builds a JavaScript `Error` with a `code` property.
pub fn js_error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    let _ = js_sys::Reflect::set(&e, &JsValue::from_str("code"), &JsValue::from_str(code));
    e.into()
}

/// Converts a client error.
pub fn client_error(e: ClientError) -> JsValue {
    js_error(e.code(), &e.to_string())
}
