//! The application class: what an application parser saw (an HTTP
//! transaction stage, a DNS query or answer, a TLS hello or certificate)
//! through the application rules, prefiltered on each buffer the event
//! carries, and through the built-in detectors that read events. A rule
//! alerts once per HTTP body. The rules' programs over an event are
//! [`crate::detect::app`]'s.

use super::prefilter::{scan_block, RecordedScan, ScanTarget};
use super::verify::Context;
use super::{Detection, FlowState, Inspection};
use crate::applayer::{AppEvent, HttpStage};
use crate::detect::app::Sender;
use crate::detect::builtin::AppData;
use crate::detect::engine::Engine;
use crate::detect::groups::Class;

/// (transaction, rule) pairs remembered per flow for body windows.
const MAX_BODY_ALERTS: usize = 64;

impl Inspection {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn inspect_app(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        ts_ns: u64,
        sender: &Sender,
        event: &AppEvent<'_>,
        datagram: Option<&[u8]>,
        out: &mut impl FnMut(Detection),
    ) {
        self.stats.app_events += 1;
        let ends = (sender.src, sender.dst);
        let context = Context {
            app_proto: Some(match event {
                AppEvent::Http(..) => "http",
                AppEvent::DnsQuery { .. } | AppEvent::DnsAnswer(_) => "dns",
                AppEvent::TlsHello(_) | AppEvent::TlsCertificate(..) => "tls",
            }),
            ..Context::between(
                ts_ns,
                sender.flow_id,
                sender.proto,
                ends,
                sender.carrier,
                event.to_server(),
            )
        };
        if !engine.rules.is_empty() {
            self.app_rules(engine, flow, &context, sender, event, datagram, out);
        }
        let mut found = Vec::new();
        let data = AppData {
            ts_ns,
            sender,
            event,
        };
        self.builtin
            .app(&mut flow.builtin, &data, &mut |f| found.push(f));
        self.raise_findings(flow, found, || context, out);
    }

    /// Runs the application rules over what a parser saw.
    #[allow(clippy::too_many_arguments)]
    fn app_rules(
        &mut self,
        engine: &Engine,
        flow: &mut FlowState,
        context: &Context,
        sender: &Sender,
        event: &AppEvent<'_>,
        datagram: Option<&[u8]>,
        out: &mut impl FnMut(Detection),
    ) {
        self.begin_candidates();
        if let Some(scratch) = self.scratch.as_ref() {
            let counters = &mut self.stats.scan[Class::App.index()];
            let stage = event.stage();
            for (index, app) in engine.app.iter().enumerate() {
                let group = &app.group;
                if app.stage != stage {
                    continue;
                }
                if group.database.is_none() {
                    continue;
                }
                event.each_item(&app.inspected, |bytes| {
                    if let Some(recorded) = self.recorded.as_mut() {
                        recorded.push(RecordedScan::new(ScanTarget::App(index), bytes));
                    }
                    scan_block(group, bytes, scratch, counters, &mut self.candidates);
                });
            }
        }
        self.end_candidates(Class::App, engine.app_always(event.stage()));
        let stage = event.stage();
        let dir = sender.dir;
        let window = match datagram {
            Some(_) => Vec::new(),
            None => std::mem::take(&mut flow.windows[dir]),
        };
        let payload = datagram.unwrap_or(&window);
        let candidates = std::mem::take(&mut self.candidates.list);
        let mut sets = std::mem::take(&mut self.sets);
        for &rule in &candidates {
            let compiled = &engine.rules[rule as usize];
            let Some(program) = compiled.app.as_ref().filter(|p| p.runs_at(stage)) else {
                continue;
            };
            // A body is shown in windows: a rule alerts once per message.
            let body_of = match event {
                AppEvent::Http(tx, HttpStage::RequestBody | HttpStage::ResponseBody) => {
                    Some((tx.seq, rule))
                }
                _ => None,
            };
            if body_of.is_some_and(|key| flow.body_alerts.contains(&key)) {
                continue;
            }
            let sets = &mut sets;
            let run = || {
                let matched = program.run(event, Some(payload))?;
                // Lookups last, so that `set` adds only what the rule's
                // other matches passed.
                for (inspected, set, op) in &compiled.datasets {
                    let value = event.inspected(inspected)?;
                    if !sets.apply(&engine.datasets, *set, *op, &value) {
                        return None;
                    }
                }
                Some(matched)
            };
            let checked = (Class::App, payload.len());
            if self.verify(engine, compiled, flow, context, checked, run, out) {
                if let Some(key) = body_of {
                    let alerts = &mut flow.body_alerts;
                    if alerts.len() >= MAX_BODY_ALERTS {
                        alerts.remove(0);
                    }
                    alerts.push(key);
                }
            }
        }
        self.candidates.list = candidates;
        self.sets = sets;
        if datagram.is_none() {
            flow.windows[dir] = window;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::applayer::{AppEvent, TlsCertificate};
    use crate::detect::app::Sender;
    use crate::detect::inspect::testing::{inspector, stream};
    use crate::detect::inspect::{DetectLimits, FlowState};

    #[test]
    fn certificate_patterns_are_found_where_their_depth_counts_in_each_certificate() {
        let mut d = inspector(
            "alert tls any any -> any any (tls.certs; content:\"EvilCorp Root\"; depth:200; sid:1;)\n",
            DetectLimits::default(),
        );
        let leaf = vec![b'L'; 1_200];
        let mut issuer = vec![b'I'; 300];
        issuer[150..163].copy_from_slice(b"EvilCorp Root");
        let chain: [&[u8]; 2] = [&leaf, &issuer];
        let cert = TlsCertificate::default();
        let sender = Sender::of_stream(&stream(1));
        let mut found = Vec::new();
        let event = AppEvent::TlsCertificate(&cert, &chain);
        d.inspect_app(
            &mut FlowState::default(),
            1,
            &sender,
            &event,
            None,
            &mut |x| found.push(x.sid),
        );
        // The built-in detectors may also speak of this certificate.
        assert_eq!(
            found.iter().filter(|&&sid| sid == 1).count(),
            1,
            "{found:?}"
        );
    }
}
