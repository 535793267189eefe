/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_WGKEY_H
#define TWILL_WGKEY_H

#include <stdint.h>

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 45 /* 44 characters and the terminator */

int wgkey_generate_private(uint8_t key[WG_KEY_LEN]);
int wgkey_public_from_private(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN]);
void wgkey_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN]);
int wgkey_from_base64(const char *b64, uint8_t key[WG_KEY_LEN]);
void wgkey_to_hex(const uint8_t key[WG_KEY_LEN], char out[2 * WG_KEY_LEN + 1]);
int wgkey_from_hex(const char *hex, uint8_t key[WG_KEY_LEN]);
/*
 * Reads the key file, creating it (0600, folder 0700) on first use; refuses a file open
 * to others. A folder of ours open to others is tightened to 0700 (logged).
 */
int wgkey_load_or_create(const char *path, uint8_t key[WG_KEY_LEN]);

#endif
