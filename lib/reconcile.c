// SPDX-License-Identifier: Apache-2.0
/* placeholder: implemented in its own change */
