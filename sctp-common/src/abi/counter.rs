//! The global counters' indices: one `#[repr(u32)]` enum, the slots of
//! [`GlobalStats::counters`](super::GlobalStats::counters).

/// Global counters, one slot each in [`GlobalStats::counters`].
///
/// Packet-level outcomes come first; every `Err*` is a reason a packet could not be
/// parsed completely (a packet gets at most one). Values are part of the map ABI: append.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Every frame the program ran on.
    Frames,
    /// Frames whose `EtherType` is neither IPv4 nor IPv6 (after up to two VLAN tags).
    NotIp,
    /// IP packets whose upper-layer protocol is not SCTP.
    NotSctp,
    /// Packets with an SCTP common header that was parsed.
    Sctp,
    Ipv4,
    Ipv6,
    /// Frames carrying at least one VLAN tag.
    VlanTagged,
    /// First fragments of a fragmented IP packet (parsed as far as they go).
    FirstFragments,
    /// Later fragments: no SCTP header inside, counted and passed.
    LaterFragments,
    /// Chunks walked, all types.
    Chunks,
    /// DATA and I-DATA chunks.
    DataChunks,
    /// User payload of DATA and I-DATA chunks (chunk length minus the chunk header).
    DataPayloadBytes,
    /// DATA / I-DATA with the U bit.
    DataUnordered,
    /// DATA / I-DATA carrying part of a message (B and E not both set).
    DataFragments,
    /// SACK gap ack blocks reported.
    SackGapBlocks,
    /// Duplicate TSNs reported in SACKs.
    SackDupTsns,
    /// A chunk walk stopped at the end of a first fragment (not an error).
    FragmentCutWalks,
    VerdictPass,
    VerdictDrop,
    /// SCTP packets whose flow had no entry and could not get one (the LRU map refused):
    /// counted here, their chunks not walked.
    FlowUnavailable,
    /// Packets with any of the `Err*` reasons below.
    Malformed,
    ErrEthernetTruncated,
    /// More than two VLAN tags.
    ErrVlanDepth,
    ErrVlanTruncated,
    ErrIpv4Truncated,
    /// IHL below 5, or a total length shorter than the header.
    ErrIpv4HeaderLength,
    ErrIpv6Truncated,
    /// More IPv6 extension headers than the walk allows.
    ErrIpv6ExtLimit,
    ErrIpv6ExtTruncated,
    /// The SCTP common header does not fit in the IP payload.
    ErrSctpHeaderTruncated,
    /// A chunk whose length field is below 4.
    ErrChunkTooShort,
    /// A chunk whose length runs past the end of the IP packet or frame.
    ErrChunkBeyondPacket,
    /// A chunk too short for its type's fixed fields (DATA < 16, SACK < 16, INIT < 20, ...).
    ErrChunkFieldsTruncated,
    /// More chunks than the walk's bound: the rest of the packet was not walked.
    ErrChunkWalkLimit,
    /// 1-3 bytes after the last chunk, too few for a chunk header.
    ErrTrailingBytes,
    /// A SACK whose gap-block and duplicate-TSN counts need more bytes than its length.
    ErrChunkCountsBeyondLength,
    /// Verification tags learned (`validate-vtag`), from INIT / INIT-ACK or the learning window.
    VtagsLearned,
    /// Associations forgotten after an ABORT or SHUTDOWN-COMPLETE.
    VtagsForgotten,
    /// Tags forgotten because the association was idle longer than `vtag-idle`.
    VtagsExpired,
    /// Application messages counted (see `parse::tally`): a DATA or I-DATA chunk that
    /// begins one, of a protocol `parse::message` reads, with a TSN its direction had not
    /// sent.
    Messages,
    /// Chunks that would begin a message but were sent before (retransmissions).
    MessagesResent,
    /// Messages of keys beyond their flow's table (`abi::messages::MESSAGE_SLOTS`).
    MessagesUntabled,
    /// Messages that could not be read, by reason (`parse::message::Malformed`).
    MessageTooShort,
    MessageUnknownVersion,
    MessageUnknownChoice,
    MessageBadLength,
    /// Diameter requests waited for (`abi::maps::PENDING`): their association's two tags
    /// are known.
    DiameterRequestsWaiting,
    /// Diameter requests not waited for: their association's other tag is not known.
    DiameterRequestsUntimed,
    /// Diameter answers timed from their requests (`abi::maps::RESPONSES`).
    DiameterAnswersTimed,
    /// Diameter answers with no request waiting (sent before the program was attached,
    /// not seen, or taken out as unanswered).
    DiameterAnswersUnmatched,
    /// Packets whose message count stopped short (kernels without `bpf_loop` count in
    /// bounded rounds; a packet of many long Diameter answers may need more).
    MessageCountsUnfinished,
    // Drop reasons from here to the end: a dropped packet counts exactly one.
    /// The source address matched a `deny-src` prefix.
    DropDenySrc,
    /// `allow-src` prefixes exist and the source matched none.
    DropSrcNotAllowed,
    /// `allow-port` ports exist and the destination port is not one.
    DropPortNotAllowed,
    /// `validate-vtag`: out of the blue, and RFC 9260 8.4/8.5 does not let it through.
    DropVtagUnknown,
    /// `init-rate`: the source's INIT token bucket was empty.
    DropInitRateSource,
    /// `global-init-rate`: the shared INIT token bucket was empty.
    DropInitRateGlobal,
    /// `malformed = drop`: an SCTP packet the parser rejects.
    DropMalformed,
    /// More chunks than `max-chunks`.
    DropTooManyChunks,
    /// A chunk of a `deny-chunk` type.
    DropDenyChunk,
    /// `deny-violations`: INIT, INIT-ACK or SHUTDOWN-COMPLETE bundled with another chunk.
    DropBundling,
    /// `deny-violations`: INIT in a packet whose verification tag is not 0.
    DropInitNonzeroTag,
    /// `deny-violations`: DATA or I-DATA in a packet whose verification tag is 0.
    DropDataZeroTag,
    /// A DATA or I-DATA chunk longer than `max-data-chunk`.
    DropDataTooLarge,
    /// A DATA or I-DATA chunk with a `deny-ppid` PPID.
    DropDenyPpid,
    /// A message of a `deny-message` key (protocol, code, kind).
    DropMessageDenied,
    /// `message-rate`: the source's bucket for the message's key was empty.
    DropMessageRate,
}

impl Counter {
    /// Number of counters.
    pub const COUNT: usize = Counter::DropMessageRate as usize + 1;
    /// Parse-error reasons: every counter from the first to the last.
    pub const FIRST_ERROR: Counter = Counter::ErrEthernetTruncated;
    pub const LAST_ERROR: Counter = Counter::ErrChunkCountsBeyondLength;
    /// Drop reasons: every counter from this one to the end.
    pub const FIRST_DROP: Counter = Counter::DropDenySrc;
    /// Number of drop reasons.
    pub const DROP_REASONS: usize = Self::COUNT - Self::FIRST_DROP as usize;

    /// Every counter in index order.
    pub const ALL: [Counter; Self::COUNT] = [
        Counter::Frames,
        Counter::NotIp,
        Counter::NotSctp,
        Counter::Sctp,
        Counter::Ipv4,
        Counter::Ipv6,
        Counter::VlanTagged,
        Counter::FirstFragments,
        Counter::LaterFragments,
        Counter::Chunks,
        Counter::DataChunks,
        Counter::DataPayloadBytes,
        Counter::DataUnordered,
        Counter::DataFragments,
        Counter::SackGapBlocks,
        Counter::SackDupTsns,
        Counter::FragmentCutWalks,
        Counter::VerdictPass,
        Counter::VerdictDrop,
        Counter::FlowUnavailable,
        Counter::Malformed,
        Counter::ErrEthernetTruncated,
        Counter::ErrVlanDepth,
        Counter::ErrVlanTruncated,
        Counter::ErrIpv4Truncated,
        Counter::ErrIpv4HeaderLength,
        Counter::ErrIpv6Truncated,
        Counter::ErrIpv6ExtLimit,
        Counter::ErrIpv6ExtTruncated,
        Counter::ErrSctpHeaderTruncated,
        Counter::ErrChunkTooShort,
        Counter::ErrChunkBeyondPacket,
        Counter::ErrChunkFieldsTruncated,
        Counter::ErrChunkWalkLimit,
        Counter::ErrTrailingBytes,
        Counter::ErrChunkCountsBeyondLength,
        Counter::VtagsLearned,
        Counter::VtagsForgotten,
        Counter::VtagsExpired,
        Counter::Messages,
        Counter::MessagesResent,
        Counter::MessagesUntabled,
        Counter::MessageTooShort,
        Counter::MessageUnknownVersion,
        Counter::MessageUnknownChoice,
        Counter::MessageBadLength,
        Counter::DiameterRequestsWaiting,
        Counter::DiameterRequestsUntimed,
        Counter::DiameterAnswersTimed,
        Counter::DiameterAnswersUnmatched,
        Counter::MessageCountsUnfinished,
        Counter::DropDenySrc,
        Counter::DropSrcNotAllowed,
        Counter::DropPortNotAllowed,
        Counter::DropVtagUnknown,
        Counter::DropInitRateSource,
        Counter::DropInitRateGlobal,
        Counter::DropMalformed,
        Counter::DropTooManyChunks,
        Counter::DropDenyChunk,
        Counter::DropBundling,
        Counter::DropInitNonzeroTag,
        Counter::DropDataZeroTag,
        Counter::DropDataTooLarge,
        Counter::DropDenyPpid,
        Counter::DropMessageDenied,
        Counter::DropMessageRate,
    ];

    /// `snake_case` name used in JSON and metric labels.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Counter::Frames => "frames",
            Counter::NotIp => "not_ip",
            Counter::NotSctp => "not_sctp",
            Counter::Sctp => "sctp",
            Counter::Ipv4 => "ipv4",
            Counter::Ipv6 => "ipv6",
            Counter::VlanTagged => "vlan_tagged",
            Counter::FirstFragments => "first_fragments",
            Counter::LaterFragments => "later_fragments",
            Counter::Chunks => "chunks",
            Counter::DataChunks => "data_chunks",
            Counter::DataPayloadBytes => "data_payload_bytes",
            Counter::DataUnordered => "data_unordered",
            Counter::DataFragments => "data_fragments",
            Counter::SackGapBlocks => "sack_gap_blocks",
            Counter::SackDupTsns => "sack_dup_tsns",
            Counter::FragmentCutWalks => "fragment_cut_walks",
            Counter::VerdictPass => "verdict_pass",
            Counter::VerdictDrop => "verdict_drop",
            Counter::FlowUnavailable => "flow_unavailable",
            Counter::Malformed => "malformed",
            Counter::ErrEthernetTruncated => "ethernet_truncated",
            Counter::ErrVlanDepth => "vlan_depth",
            Counter::ErrVlanTruncated => "vlan_truncated",
            Counter::ErrIpv4Truncated => "ipv4_truncated",
            Counter::ErrIpv4HeaderLength => "ipv4_header_length",
            Counter::ErrIpv6Truncated => "ipv6_truncated",
            Counter::ErrIpv6ExtLimit => "ipv6_ext_limit",
            Counter::ErrIpv6ExtTruncated => "ipv6_ext_truncated",
            Counter::ErrSctpHeaderTruncated => "sctp_header_truncated",
            Counter::ErrChunkTooShort => "chunk_too_short",
            Counter::ErrChunkBeyondPacket => "chunk_beyond_packet",
            Counter::ErrChunkFieldsTruncated => "chunk_fields_truncated",
            Counter::ErrChunkWalkLimit => "chunk_walk_limit",
            Counter::ErrTrailingBytes => "trailing_bytes",
            Counter::ErrChunkCountsBeyondLength => "chunk_counts_beyond_length",
            Counter::VtagsLearned => "vtags_learned",
            Counter::VtagsForgotten => "vtags_forgotten",
            Counter::VtagsExpired => "vtags_expired",
            Counter::Messages => "messages",
            Counter::MessagesResent => "messages_resent",
            Counter::MessagesUntabled => "messages_untabled",
            Counter::MessageTooShort => "message_too_short",
            Counter::MessageUnknownVersion => "message_unknown_version",
            Counter::MessageUnknownChoice => "message_unknown_choice",
            Counter::MessageBadLength => "message_bad_length",
            Counter::DiameterRequestsWaiting => "diameter_requests_waiting",
            Counter::DiameterRequestsUntimed => "diameter_requests_untimed",
            Counter::DiameterAnswersTimed => "diameter_answers_timed",
            Counter::DiameterAnswersUnmatched => "diameter_answers_unmatched",
            Counter::MessageCountsUnfinished => "message_counts_unfinished",
            Counter::DropDenySrc => "drop_deny_src",
            Counter::DropSrcNotAllowed => "drop_src_not_allowed",
            Counter::DropPortNotAllowed => "drop_port_not_allowed",
            Counter::DropVtagUnknown => "drop_vtag_unknown",
            Counter::DropInitRateSource => "drop_init_rate_source",
            Counter::DropInitRateGlobal => "drop_init_rate_global",
            Counter::DropMalformed => "drop_malformed",
            Counter::DropTooManyChunks => "drop_too_many_chunks",
            Counter::DropDenyChunk => "drop_deny_chunk",
            Counter::DropBundling => "drop_bundling",
            Counter::DropInitNonzeroTag => "drop_init_nonzero_tag",
            Counter::DropDataZeroTag => "drop_data_zero_tag",
            Counter::DropDataTooLarge => "drop_data_too_large",
            Counter::DropDenyPpid => "drop_deny_ppid",
            Counter::DropMessageDenied => "drop_message_denied",
            Counter::DropMessageRate => "drop_message_rate",
        }
    }

    /// Whether this counter is a parse-error reason.
    #[must_use]
    pub fn is_error(self) -> bool {
        Self::is_error_code(self as u32)
    }

    /// [`Counter::is_error`] of a counter's number.
    #[inline(always)]
    #[must_use]
    pub fn is_error_code(code: u32) -> bool {
        (Self::FIRST_ERROR as u32..=Self::LAST_ERROR as u32).contains(&code)
    }

    /// Whether this counter is a drop reason.
    #[must_use]
    pub fn is_drop(self) -> bool {
        self as u32 >= Self::FIRST_DROP as u32
    }

    /// A drop reason's name without the `drop_` prefix (the key of `"drops"` in JSON and
    /// the `reason` label of metrics).
    #[must_use]
    pub fn reason(self) -> &'static str {
        let name = self.name();
        name.strip_prefix("drop_").unwrap_or(name)
    }
}
