//! The labelled cryptographic operations of RFC 9420 §5 and §8, built on
//! the primitives of `openmls_rust_crypto` (the `OpenMlsCrypto` trait).
//!
//! openmls implements these too, but keeps them crate-private; the vectors
//! need them directly, so they are written out here from the RFC.

use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};
use openmls_traits::{
    crypto::OpenMlsCrypto,
    random::OpenMlsRand,
    types::{Ciphersuite, HpkeCiphertext},
    OpenMlsProvider,
};

use crate::{error::CheckError, rfc::codec::Writer};

/// The RFC 9420 label prefix.
const MLS_LABEL_PREFIX: &[u8] = b"MLS 1.0 ";

/// One cipher suite plus the provider that computes it.
pub(crate) struct Suite {
    pub(crate) cs: Ciphersuite,
    provider: OpenMlsRustCrypto,
}

impl Suite {
    /// The suite for a vector's `cipher_suite` value, if the provider has it.
    pub(crate) fn new(id: u16) -> Result<Self, CheckError> {
        let cs =
            Ciphersuite::try_from(id).map_err(|_| CheckError::Protocol("unknown cipher suite"))?;
        let provider = OpenMlsRustCrypto::default();
        provider.crypto().supports(cs)?;
        Ok(Self { cs, provider })
    }

    pub(crate) fn id(&self) -> u16 {
        self.cs.into()
    }

    pub(crate) fn crypto(&self) -> &RustCrypto {
        self.provider.crypto()
    }

    /// KDF.Nh
    pub(crate) fn nh(&self) -> usize {
        self.cs.hash_length()
    }

    /// AEAD.Nk
    pub(crate) fn nk(&self) -> usize {
        self.cs.aead_key_length()
    }

    /// AEAD.Nn
    pub(crate) fn nn(&self) -> usize {
        self.cs.aead_nonce_length()
    }

    pub(crate) fn random(&self, len: usize) -> Result<Vec<u8>, CheckError> {
        self.provider
            .rand()
            .random_vec(len)
            .map_err(|e| CheckError::Crypto(format!("{e:?}")))
    }

    pub(crate) fn hash(&self, data: &[u8]) -> Result<Vec<u8>, CheckError> {
        Ok(self.crypto().hash(self.cs.hash_algorithm(), data)?)
    }

    /// MAC(key, data): HMAC with the suite's hash (RFC 9420 §5.1).
    pub(crate) fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CheckError> {
        Ok(self
            .crypto()
            .hmac(self.cs.hash_algorithm(), key, data)?
            .as_slice()
            .to_vec())
    }

    /// KDF.Extract(salt, ikm).
    pub(crate) fn extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, CheckError> {
        Ok(self
            .crypto()
            .hkdf_extract(self.cs.hash_algorithm(), salt, ikm)?
            .as_slice()
            .to_vec())
    }

    /// ExpandWithLabel(Secret, Label, Context, Length) (RFC 9420 §8).
    pub(crate) fn expand_with_label(
        &self,
        secret: &[u8],
        label: &[u8],
        context: &[u8],
        length: usize,
    ) -> Result<Vec<u8>, CheckError> {
        let length16 = u16::try_from(length).map_err(|_| CheckError::Encode("KDFLabel length"))?;
        let info = Writer::new()
            .u16(length16)
            .vec(&[MLS_LABEL_PREFIX, label].concat())?
            .vec(context)?
            .finish();
        Ok(self
            .crypto()
            .hkdf_expand(self.cs.hash_algorithm(), secret, &info, length)?
            .as_slice()
            .to_vec())
    }

    /// DeriveSecret(Secret, Label).
    pub(crate) fn derive_secret(&self, secret: &[u8], label: &[u8]) -> Result<Vec<u8>, CheckError> {
        self.expand_with_label(secret, label, &[], self.nh())
    }

    /// DeriveTreeSecret(Secret, Label, Generation, Length) (RFC 9420 §9).
    pub(crate) fn derive_tree_secret(
        &self,
        secret: &[u8],
        label: &[u8],
        generation: u32,
        length: usize,
    ) -> Result<Vec<u8>, CheckError> {
        self.expand_with_label(secret, label, &generation.to_be_bytes(), length)
    }

    /// RefHash(Label, Value) (RFC 9420 §5.2); the label is used as given.
    pub(crate) fn ref_hash(&self, label: &[u8], value: &[u8]) -> Result<Vec<u8>, CheckError> {
        let input = Writer::new().vec(label)?.vec(value)?.finish();
        self.hash(&input)
    }

    fn sign_content(label: &[u8], content: &[u8]) -> Result<Vec<u8>, CheckError> {
        Ok(Writer::new()
            .vec(&[MLS_LABEL_PREFIX, label].concat())?
            .vec(content)?
            .finish())
    }

    /// SignWithLabel(SignatureKey, Label, Content) (RFC 9420 §5.1.2).
    pub(crate) fn sign_with_label(
        &self,
        private: &[u8],
        label: &[u8],
        content: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        let tbs = Self::sign_content(label, content)?;
        Ok(self
            .crypto()
            .sign(self.cs.signature_algorithm(), &tbs, private)?)
    }

    /// VerifyWithLabel(VerificationKey, Label, Content, Signature).
    pub(crate) fn verify_with_label(
        &self,
        public: &[u8],
        label: &[u8],
        content: &[u8],
        signature: &[u8],
    ) -> Result<(), CheckError> {
        let tbs = Self::sign_content(label, content)?;
        self.crypto()
            .verify_signature(self.cs.signature_algorithm(), &tbs, public, signature)
            .map_err(|_| CheckError::Verify("signature"))
    }

    fn encrypt_context(label: &[u8], context: &[u8]) -> Result<Vec<u8>, CheckError> {
        Self::sign_content(label, context)
    }

    /// EncryptWithLabel(PublicKey, Label, Context, Plaintext) (RFC 9420 §5.1.3),
    /// returning `(kem_output, ciphertext)`.
    pub(crate) fn encrypt_with_label(
        &self,
        public: &[u8],
        label: &[u8],
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CheckError> {
        let info = Self::encrypt_context(label, context)?;
        let ct = self
            .crypto()
            .hpke_seal(self.cs.hpke_config(), public, &info, &[], plaintext)?;
        Ok((
            ct.kem_output.as_slice().to_vec(),
            ct.ciphertext.as_slice().to_vec(),
        ))
    }

    /// DecryptWithLabel(PrivateKey, Label, Context, KEMOutput, Ciphertext).
    pub(crate) fn decrypt_with_label(
        &self,
        private: &[u8],
        label: &[u8],
        context: &[u8],
        kem_output: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        let info = Self::encrypt_context(label, context)?;
        let input = HpkeCiphertext {
            kem_output: kem_output.to_vec().into(),
            ciphertext: ciphertext.to_vec().into(),
        };
        self.crypto()
            .hpke_open(self.cs.hpke_config(), &input, private, &info, &[])
            .map_err(|_| CheckError::Verify("HPKE open"))
    }

    /// KEM.DeriveKeyPair(ikm), returning `(private, public)`.
    pub(crate) fn derive_key_pair(&self, ikm: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CheckError> {
        let kp = self
            .crypto()
            .derive_hpke_keypair(self.cs.hpke_config(), ikm)?;
        Ok((kp.private.to_vec(), kp.public))
    }

    /// Checks that an HPKE private key belongs to a public key by sealing to
    /// the public key and opening with the private key.
    pub(crate) fn check_key_pair(&self, private: &[u8], public: &[u8]) -> Result<(), CheckError> {
        let probe = b"key pair probe";
        let (kem, ct) = self.encrypt_with_label(public, b"probe", &[], probe)?;
        let out = self
            .decrypt_with_label(private, b"probe", &[], &kem, &ct)
            .map_err(|_| CheckError::mismatch("HPKE private key does not match public key"))?;
        if out == probe {
            Ok(())
        } else {
            Err(CheckError::mismatch("HPKE key pair probe"))
        }
    }

    pub(crate) fn aead_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        Ok(self
            .crypto()
            .aead_encrypt(self.cs.aead_algorithm(), key, plaintext, nonce, aad)?)
    }

    pub(crate) fn aead_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CheckError> {
        self.crypto()
            .aead_decrypt(self.cs.aead_algorithm(), key, ciphertext, nonce, aad)
            .map_err(|_| CheckError::Verify("AEAD tag"))
    }
}
