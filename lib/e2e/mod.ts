/**
 * Layer 4, end-to-end: what members say to each other through a relay that
 * cannot read it: signed announcements, the symmetric chain, sender keys,
 * pairwise sessions between online members, prekeys and prekey envelopes for
 * offline members, the plaintext codecs, and the per-room state machine that
 * ties them together. It does no I/O. Uses the layers below.
 *
 * @module
 */

export * from "./announcement.ts";
export * from "./chain.ts";
export * from "./content.ts";
export * from "./pairwise_session.ts";
export * from "./prekey_envelope.ts";
export * from "./prekeys.ts";
export * from "./room.ts";
export * from "./room_member.ts";
export * from "./sender_keys.ts";
export * from "./room_roster.ts";
