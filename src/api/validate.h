/* Input rules of Nakama's authenticate, link and account APIs.
 *
 * Each kz_validate_* function takes a byte slice (no NUL needed) and returns
 * NULL when the input is acceptable, else the exact message Nakama sends
 * with InvalidArgument (gRPC 3 / HTTP 400). The messages are static strings:
 * borrowed, never freed.
 *
 * The checks follow Nakama's order (server/api_authenticate.go,
 * server/core_link.go): empty -> "... is required."; a forbidden byte ->
 * "... no spaces or control characters allowed."; then the pattern; then the
 * length. "Control" and "space" are ASCII only, as in Go's POSIX classes:
 * bytes 0x00-0x1f and 0x7f, plus ' ' where spaces are forbidden. Beyond
 * Nakama, input that is not valid UTF-8 is refused with the forbidden-byte
 * message (Nakama would fail later, in the database). */
#ifndef KZ_API_VALIDATE_H
#define KZ_API_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* Device id: required, no spaces/control, 10..128 bytes. */
const char *kz_validate_device_id(const char *s, size_t n);

/* Custom id: required, no spaces/control, 6..128 bytes. */
const char *kz_validate_custom_id(const char *s, size_t n);

/* Email address as AuthenticateEmail checks it: no spaces/control, the
 * shape something@something.something (Go's ^.+@.+\..+$), 10..255 bytes.
 * An empty address is "Email address and password is required."; note
 * that AuthenticateEmail treats an empty email as a username + password
 * login instead, so that caller must test n == 0 itself first. */
const char *kz_validate_email(const char *s, size_t n);

/* Password: at least 8 bytes (an empty one gets the same message, as in
 * Nakama's authenticate). */
const char *kz_validate_password(const char *s, size_t n);

/* LinkEmail's combined check, whose order differs from authenticate:
 * either empty -> "Email address and password is required.", then
 * spaces/control in the email, then the password length, then the email's
 * shape and length. */
const char *kz_validate_link_email(const char *email, size_t en, const char *pw, size_t pn);

/* A username supplied by the client (authenticate's username parameter,
 * UpdateAccount). Nakama 3.x forbids control characters (including tab,
 * CR, LF, VT, FF) but allows plain spaces. n == 0 is answered with
 * "Username invalid, must be 1-128 bytes.", although authenticate callers
 * treat an empty username as "generate one" and never call this. */
const char *kz_validate_username(const char *s, size_t n);

/* True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). */
bool kz_utf8_valid(const char *s, size_t n);

/* Lower-cases A-Z in s[0..n) in place; other bytes are left alone. Emails
 * are folded with this before lookup and storage. */
void kz_lower_ascii(char *s, size_t n);

#endif
