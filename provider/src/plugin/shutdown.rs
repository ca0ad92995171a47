//! A one-shot, cloneable "stop serving" signal.

use tokio::sync::watch;

/// Fired by `GRPCController/Shutdown`, SIGTERM, or (in debug mode) Ctrl-C;
/// everything that must end at shutdown waits on it.
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    tx: watch::Sender<bool>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    /// A signal that has not fired yet.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx }
    }

    /// Fires the signal (again is harmless).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the signal has fired (at once if it already has).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // `wait_for` only fails when the sender is gone, and we hold it.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_resolves_after_trigger_even_late() {
        let s = ShutdownSignal::new();
        assert!(!s.is_triggered());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        s.trigger();
        assert!(waiter.await.is_ok());
        assert!(s.is_triggered());
        s.wait().await;
    }
}
