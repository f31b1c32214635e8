//! HMAC-SHA256 signatures over the four JSON frames of a message, as the Jupyter
//! protocol requires; verification compares in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies messages with the connection key. An empty key disables signing.
#[derive(Clone)]
pub struct Signer {
    mac: Option<HmacSha256>,
}

impl Signer {
    pub fn new(key: &str) -> Self {
        let mac = if key.is_empty() {
            None
        } else {
            // HMAC accepts keys of any length, so this cannot fail.
            Some(HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length"))
        };
        Signer { mac }
    }

    /// Hex signature of the frames (header, parent_header, metadata, content), or "" when
    /// signing is disabled.
    pub fn sign(&self, frames: &[&[u8]]) -> String {
        match &self.mac {
            None => String::new(),
            Some(mac) => {
                let mut mac = mac.clone();
                for frame in frames {
                    mac.update(frame);
                }
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    /// Whether `signature` (hex) is right for the frames. Constant-time in the digest.
    pub fn verify(&self, signature: &[u8], frames: &[&[u8]]) -> bool {
        match &self.mac {
            None => true,
            Some(mac) => {
                let Ok(expected) = hex::decode(signature) else {
                    return false;
                };
                let mut mac = mac.clone();
                for frame in frames {
                    mac.update(frame);
                }
                mac.verify_slice(&expected).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_matches_python_hmac() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'key',b'abcd',hashlib.sha256).hexdigest())"
        let signer = Signer::new("key");
        let expected = "2a31ec0ee8d878c9eece9fb0df79b3b90b2256240163aa5ee50d176d3d1121f8";
        assert_eq!(signer.sign(&[b"ab", b"c", b"d"]), expected);
        assert_eq!(signer.sign(&[b"abcd"]), expected);
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_tampering() {
        let signer = Signer::new("secret");
        let sig = signer.sign(&[b"h", b"p", b"m", b"c"]);
        assert!(signer.verify(sig.as_bytes(), &[b"h", b"p", b"m", b"c"]));
        assert!(!signer.verify(sig.as_bytes(), &[b"h", b"p", b"m", b"C"]));
        assert!(!signer.verify(b"not hex", &[b"h", b"p", b"m", b"c"]));
        assert!(!signer.verify(b"", &[b"h", b"p", b"m", b"c"]));
    }

    #[test]
    fn other_key_does_not_verify() {
        let sig = Signer::new("a").sign(&[b"x"]);
        assert!(!Signer::new("b").verify(sig.as_bytes(), &[b"x"]));
    }

    #[test]
    fn empty_key_disables_signing() {
        let signer = Signer::new("");
        assert_eq!(signer.sign(&[b"x"]), "");
        assert!(signer.verify(b"", &[b"x"]));
    }
}
