//! Names of application messages, for people: the kernel and the parser count codes
//! only. Written from the specifications (the procedure codes of each AP protocol's
//! ASN.1, the Diameter command codes IANA registers, RFC 4666's M3UA messages) and
//! checked against tshark's value tables by a test (`message_names_match_tshark`).

use sctp_common::parse::message::Protocol;

/// NGAP's procedure codes (TS 38.413 9.4.7, `id-...`).
const NGAP: &[(u32, &str)] = &[
    (0, "AMFConfigurationUpdate"),
    (1, "AMFStatusIndication"),
    (2, "CellTrafficTrace"),
    (3, "DeactivateTrace"),
    (4, "DownlinkNASTransport"),
    (5, "DownlinkNonUEAssociatedNRPPaTransport"),
    (6, "DownlinkRANConfigurationTransfer"),
    (7, "DownlinkRANStatusTransfer"),
    (8, "DownlinkUEAssociatedNRPPaTransport"),
    (9, "ErrorIndication"),
    (10, "HandoverCancel"),
    (11, "HandoverNotification"),
    (12, "HandoverPreparation"),
    (13, "HandoverResourceAllocation"),
    (14, "InitialContextSetup"),
    (15, "InitialUEMessage"),
    (16, "LocationReportingControl"),
    (17, "LocationReportingFailureIndication"),
    (18, "LocationReport"),
    (19, "NASNonDeliveryIndication"),
    (20, "NGReset"),
    (21, "NGSetup"),
    (22, "OverloadStart"),
    (23, "OverloadStop"),
    (24, "Paging"),
    (25, "PathSwitchRequest"),
    (26, "PDUSessionResourceModify"),
    (27, "PDUSessionResourceModifyIndication"),
    (28, "PDUSessionResourceRelease"),
    (29, "PDUSessionResourceSetup"),
    (30, "PDUSessionResourceNotify"),
    (31, "PrivateMessage"),
    (32, "PWSCancel"),
    (33, "PWSFailureIndication"),
    (34, "PWSRestartIndication"),
    (35, "RANConfigurationUpdate"),
    (36, "RerouteNASRequest"),
    (37, "RRCInactiveTransitionReport"),
    (38, "TraceFailureIndication"),
    (39, "TraceStart"),
    (40, "UEContextModification"),
    (41, "UEContextRelease"),
    (42, "UEContextReleaseRequest"),
    (43, "UERadioCapabilityCheck"),
    (44, "UERadioCapabilityInfoIndication"),
    (45, "UETNLABindingRelease"),
    (46, "UplinkNASTransport"),
    (47, "UplinkNonUEAssociatedNRPPaTransport"),
    (48, "UplinkRANConfigurationTransfer"),
    (49, "UplinkRANStatusTransfer"),
    (50, "UplinkUEAssociatedNRPPaTransport"),
    (51, "WriteReplaceWarning"),
    (52, "SecondaryRATDataUsageReport"),
    (53, "UplinkRIMInformationTransfer"),
    (54, "DownlinkRIMInformationTransfer"),
    (55, "RetrieveUEInformation"),
    (56, "UEInformationTransfer"),
    (57, "RANCPRelocationIndication"),
    (58, "UEContextResume"),
    (59, "UEContextSuspend"),
    (60, "UERadioCapabilityIDMapping"),
    (61, "HandoverSuccess"),
    (62, "UplinkRANEarlyStatusTransfer"),
    (63, "DownlinkRANEarlyStatusTransfer"),
    (64, "AMFCPRelocationIndication"),
    (65, "ConnectionEstablishmentIndication"),
];

/// S1AP's procedure codes (TS 36.413 9.3.7, `id-...`).
const S1AP: &[(u32, &str)] = &[
    (0, "HandoverPreparation"),
    (1, "HandoverResourceAllocation"),
    (2, "HandoverNotification"),
    (3, "PathSwitchRequest"),
    (4, "HandoverCancel"),
    (5, "E-RABSetup"),
    (6, "E-RABModify"),
    (7, "E-RABRelease"),
    (8, "E-RABReleaseIndication"),
    (9, "InitialContextSetup"),
    (10, "Paging"),
    (11, "downlinkNASTransport"),
    (12, "initialUEMessage"),
    (13, "uplinkNASTransport"),
    (14, "Reset"),
    (15, "ErrorIndication"),
    (16, "NASNonDeliveryIndication"),
    (17, "S1Setup"),
    (18, "UEContextReleaseRequest"),
    (19, "DownlinkS1cdma2000tunnelling"),
    (20, "UplinkS1cdma2000tunnelling"),
    (21, "UEContextModification"),
    (22, "UECapabilityInfoIndication"),
    (23, "UEContextRelease"),
    (24, "eNBStatusTransfer"),
    (25, "MMEStatusTransfer"),
    (26, "DeactivateTrace"),
    (27, "TraceStart"),
    (28, "TraceFailureIndication"),
    (29, "ENBConfigurationUpdate"),
    (30, "MMEConfigurationUpdate"),
    (31, "LocationReportingControl"),
    (32, "LocationReportingFailureIndication"),
    (33, "LocationReport"),
    (34, "OverloadStart"),
    (35, "OverloadStop"),
    (36, "WriteReplaceWarning"),
    (37, "eNBDirectInformationTransfer"),
    (38, "MMEDirectInformationTransfer"),
    (39, "PrivateMessage"),
    (40, "eNBConfigurationTransfer"),
    (41, "MMEConfigurationTransfer"),
    (42, "CellTrafficTrace"),
    (43, "Kill"),
    (44, "downlinkUEAssociatedLPPaTransport"),
    (45, "uplinkUEAssociatedLPPaTransport"),
    (46, "downlinkNonUEAssociatedLPPaTransport"),
    (47, "uplinkNonUEAssociatedLPPaTransport"),
    (48, "UERadioCapabilityMatch"),
    (49, "PWSRestartIndication"),
    (50, "E-RABModificationIndication"),
    (51, "PWSFailureIndication"),
    (52, "RerouteNASRequest"),
    (53, "UEContextModificationIndication"),
    (54, "ConnectionEstablishmentIndication"),
    (55, "UEContextSuspend"),
    (56, "UEContextResume"),
    (57, "NASDeliveryIndication"),
    (58, "RetrieveUEInformation"),
    (59, "UEInformationTransfer"),
    (60, "eNBCPRelocationIndication"),
    (61, "MMECPRelocationIndication"),
    (62, "SecondaryRATDataUsageReport"),
    (63, "UERadioCapabilityIDMapping"),
];

/// Diameter command codes (IANA's registry: RFC 6733, RFC 4006, RFC 4072; 3GPP TS 29.229
/// Cx, TS 29.329 Sh, TS 29.272 S6a), named without "-Request" / "-Answer".
const DIAMETER: &[(u32, &str)] = &[
    (257, "Capabilities-Exchange"),
    (258, "Re-Auth"),
    (271, "Accounting"),
    (272, "Credit-Control"),
    (274, "Abort-Session"),
    (275, "Session-Termination"),
    (280, "Device-Watchdog"),
    (282, "Disconnect-Peer"),
    (300, "User-Authorization"),
    (301, "Server-Assignment"),
    (302, "Location-Info"),
    (303, "Multimedia-Auth"),
    (304, "Registration-Termination"),
    (305, "Push-Profile"),
    (306, "User-Data"),
    (307, "Profile-Update"),
    (308, "Subscribe-Notifications"),
    (309, "Push-Notification"),
    (316, "Update-Location"),
    (317, "Cancel-Location"),
    (318, "Authentication-Information"),
    (319, "Insert-Subscriber-Data"),
    (320, "Delete-Subscriber-Data"),
    (321, "Purge-UE"),
    (322, "Reset"),
    (323, "Notify"),
];

/// M3UA's messages (RFC 4666 3.1.2 and 3.1.3), by class << 8 | type.
const M3UA: &[(u32, &str)] = &[
    (0x0000, "ERR"),
    (0x0001, "NTFY"),
    (0x0101, "DATA"),
    (0x0201, "DUNA"),
    (0x0202, "DAVA"),
    (0x0203, "DAUD"),
    (0x0204, "SCON"),
    (0x0205, "DUPU"),
    (0x0206, "DRST"),
    (0x0301, "ASPUP"),
    (0x0302, "ASPDN"),
    (0x0303, "BEAT"),
    (0x0304, "ASPUP_ACK"),
    (0x0305, "ASPDN_ACK"),
    (0x0306, "BEAT_ACK"),
    (0x0401, "ASPAC"),
    (0x0402, "ASPIA"),
    (0x0403, "ASPAC_ACK"),
    (0x0404, "ASPIA_ACK"),
    (0x0901, "REG_REQ"),
    (0x0902, "REG_RSP"),
    (0x0903, "DEREG_REQ"),
    (0x0904, "DEREG_RSP"),
];

/// The table of a protocol's message names, by code (see `parse::message::Message::code`).
#[must_use]
pub fn table(protocol: Protocol) -> &'static [(u32, &'static str)] {
    match protocol {
        Protocol::Ngap => NGAP,
        Protocol::S1ap => S1AP,
        Protocol::Diameter => DIAMETER,
        Protocol::M3ua => M3UA,
        _ => &[],
    }
}

/// The name of a message of `protocol` with `code`, if the tables know it.
#[must_use]
pub fn name(protocol: Protocol, code: u32) -> Option<&'static str> {
    table(protocol).iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_once_and_in_order() {
        for p in Protocol::ALL {
            let t = table(p);
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{}: codes out of order or repeated", p.name());
        }
    }

    #[test]
    fn names_are_found_by_protocol_and_code() {
        assert_eq!(name(Protocol::Ngap, 21), Some("NGSetup"));
        assert_eq!(name(Protocol::S1ap, 17), Some("S1Setup"));
        assert_eq!(name(Protocol::Diameter, 316), Some("Update-Location"));
        assert_eq!(name(Protocol::M3ua, 0x0101), Some("DATA"));
        assert_eq!(name(Protocol::Ngap, 255), None);
        assert_eq!(name(Protocol::Dtls, 0), None);
    }
}
