//! Contacts, message requests and blocking in the JavaScript API.

use wasm_bindgen::prelude::*;

use super::{channel, to_js, QpqClient};
use crate::error::client_error;
use crate::views::ContactView;

#[wasm_bindgen]
impl QpqClient {
    /// The contacts, sorted by address.
    #[wasm_bindgen(unchecked_return_type = "ContactView[]")]
    pub fn contacts(&self) -> JsValue {
        let v: Vec<ContactView> = self
            .client
            .contacts()
            .into_iter()
            .map(|c| ContactView { user: c.user.to_string(), added_at: c.added_at })
            .collect();
        to_js(&v)
    }

    /// Adds a contact by `name@domain` (or a bare name on this server), once the directory
    /// says the account exists.
    #[wasm_bindgen(js_name = addContact)]
    pub async fn add_contact(&self, user: String) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        self.client.add_contact(&user).await.map_err(client_error)
    }

    /// Removes a contact: what they start from now on arrives as a request.
    #[wasm_bindgen(js_name = removeContact)]
    pub async fn remove_contact(&self, user: String) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        self.client.remove_contact(&user).await.map_err(client_error)
    }

    /// The contacts as a JSON document, for a file.
    #[wasm_bindgen(js_name = exportContacts)]
    pub fn export_contacts(&self) -> String {
        self.client.export_contacts()
    }

    /// Adds the contacts of an exported list; resolves to how many were new.
    #[wasm_bindgen(js_name = importContacts)]
    pub async fn import_contacts(&self, json: String) -> Result<u32, JsValue> {
        let n = self.client.import_contacts(&json).await.map_err(client_error)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The users this account blocks, sorted.
    #[wasm_bindgen(js_name = blockedUsers)]
    pub fn blocked_users(&self) -> Vec<String> {
        self.client.blocked_users().into_iter().map(|u| u.to_string()).collect()
    }

    /// Blocks a person for the whole account (kept by the node; their requests are put away).
    pub async fn block(&self, user: String) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        self.client.set_blocked(&user, true).await.map_err(client_error)
    }

    /// Unblocks a person.
    pub async fn unblock(&self, user: String) -> Result<(), JsValue> {
        let user = self.client.resolve_user(&user).map_err(client_error)?;
        self.client.set_blocked(&user, false).await.map_err(client_error)
    }

    /// Accepts a message request: it becomes a conversation like any other.
    #[wasm_bindgen(js_name = acceptRequest)]
    pub async fn accept_request(&self, conversation: String) -> Result<(), JsValue> {
        self.client.accept_request(&channel(&conversation)?).await.map_err(client_error)
    }

    /// Deletes a message request: leaves it, and it is no longer listed.
    #[wasm_bindgen(js_name = deleteRequest)]
    pub async fn delete_request(&self, conversation: String) -> Result<(), JsValue> {
        self.client.delete_request(&channel(&conversation)?).await.map_err(client_error)
    }
}
