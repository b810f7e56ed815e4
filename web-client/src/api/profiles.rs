//! Profiles in the JavaScript API: the own profile, a person's as held, the picture, and
//! forwarding a signed card.

use qpq_core::Picture;
use wasm_bindgen::prelude::*;

use super::{channel, to_js, QpqClient};
use crate::error::{client_error, js_error};
use crate::views::profile_view;

#[wasm_bindgen]
impl QpqClient {
    /// This account's own profile, `undefined` when none was set.
    #[wasm_bindgen(unchecked_return_type = "ProfileView | undefined")]
    pub fn profile(&self) -> JsValue {
        let me = self.client.user();
        self.client.with_engine(|e| profile_view(e, &me)).map_or(JsValue::UNDEFINED, |v| to_js(&v))
    }

    /// A person's profile as this device holds it, `undefined` when none arrived.
    #[wasm_bindgen(js_name = profileOf, unchecked_return_type = "ProfileView | undefined")]
    pub fn profile_of(&self, user: String) -> Result<JsValue, JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        Ok(self.client.with_engine(|e| profile_view(e, &user)).map_or(JsValue::UNDEFINED, |v| to_js(&v)))
    }

    /// A person's (or the own) profile picture from a verified profile.
    #[wasm_bindgen(js_name = profilePicture, unchecked_return_type = "{ type: string, bytes: Uint8Array } | undefined")]
    pub fn profile_picture(&self, user: String) -> Result<JsValue, JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        let picture = self.client.profile(&user).and_then(|k| k.profile).and_then(|p| p.picture);
        let Some(p) = picture else { return Ok(JsValue::UNDEFINED) };
        let view = js_sys::Object::new();
        js_sys::Reflect::set(&view, &"type".into(), &p.mime.into())?;
        js_sys::Reflect::set(&view, &"bytes".into(), &js_sys::Uint8Array::from(p.bytes.as_slice()))?;
        Ok(view.into())
    }

    /// Sets this account's profile and shares it in every conversation. Replaces the whole
    /// profile: pass the current picture to keep it, none to remove it. Refused in words when
    /// the name is over 64 characters, the status over 140, or the picture over 48 KiB or not
    /// JPEG, PNG or WebP.
    #[wasm_bindgen(js_name = setProfile)]
    pub async fn set_profile(
        &self,
        name: String,
        status: String,
        picture: Option<js_sys::Uint8Array>,
        #[wasm_bindgen(js_name = pictureType)] picture_type: Option<String>,
    ) -> Result<(), JsValue> {
        let picture = match (picture, picture_type) {
            (Some(bytes), Some(mime)) => Some(Picture { mime, bytes: bytes.to_vec() }),
            (Some(_), None) => return Err(js_error("bad_value", "say what type of image the picture is")),
            (None, _) => None,
        };
        self.client.set_profile(&name, &status, picture).await.map_err(client_error)
    }

    /// The signed profile card of a person (or the own) as held, for forwarding.
    #[wasm_bindgen(js_name = profileCard)]
    pub fn profile_card(&self, user: String) -> Result<Option<js_sys::Uint8Array>, JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        Ok(self.client.profile_card(&user).map(|c| js_sys::Uint8Array::from(c.as_slice())))
    }

    /// Forwards a signed profile card into a conversation whose member it describes; the
    /// receivers check its signature against the directory and ignore it if it fails.
    #[wasm_bindgen(js_name = shareProfileCard)]
    pub async fn share_profile_card(&self, conversation: String, card: js_sys::Uint8Array) -> Result<(), JsValue> {
        let conv = channel(&conversation)?;
        self.client.share_profile_card(&conv, card.to_vec()).await.map_err(client_error)
    }
}
