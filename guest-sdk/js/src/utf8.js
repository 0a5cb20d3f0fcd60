// UTF-8 bytes of strings, and the byte order the Rust SDK and the host sort names by.

/**
 * The UTF-8 bytes of a string; lone surrogates become U+FFFD, as TextEncoder does.
 * @param {string} text
 * @returns {number[]}
 */
export function utf8(text) {
    const bytes = [];
    for (const char of text) {
        let code = /** @type {number} */ (char.codePointAt(0));
        if (code >= 0xd800 && code <= 0xdfff) {
            code = 0xfffd;
        }
        if (code < 0x80) {
            bytes.push(code);
        } else if (code < 0x800) {
            bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
        } else if (code < 0x10000) {
            bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
        } else {
            bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
        }
    }
    return bytes;
}

/**
 * Compares two strings by their UTF-8 bytes (which differs from JavaScript's UTF-16 order
 * for characters beyond U+FFFF), as Rust orders strings.
 * @param {string} a
 * @param {string} b
 * @returns {number}
 */
export function compareUtf8(a, b) {
    if (a === b) {
        return 0;
    }
    const x = utf8(a);
    const y = utf8(b);
    const length = Math.min(x.length, y.length);
    for (let i = 0; i < length; i++) {
        if (x[i] !== y[i]) {
            return x[i] - y[i];
        }
    }
    return x.length - y.length;
}
