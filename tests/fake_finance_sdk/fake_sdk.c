/*
 * A stand-in for Tencent's libWeWorkFinanceSdk_C.so, built by the tests with gcc.
 *
 * It exports the functions of the official header WeWorkFinanceSdk_C.h with the same
 * C signatures, so qunpulse's ctypes binding is exercised exactly as with the real SDK.
 * What it serves is scripted by the test:
 *
 *   $QP_FAKE_SDK_SCRIPT  a file with one record per line: "<seq>\t<chatdata JSON object>"
 *                        (re-read on every GetChatData, so a test can append records)
 *   $QP_FAKE_SDK_SECRET  the secret Init accepts (any other: error 10000... see Init)
 *
 * DecryptData: the real algorithm is not public. This stand-in defines its own:
 * encrypt_chat_msg is the lowercase hex of (message XOR the random key, repeated).
 * The test encrypts that way; qunpulse treats encrypt_chat_msg as opaque either way.
 *
 * Counters the test reads through ctypes: FakeLiveSlices() (NewSlice minus FreeSlice),
 * FakeLiveSdks() (NewSdk minus DestroySdk), FakeLastSeq() (seq of the last GetChatData).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct WeWorkFinanceSdk_t { int initialised; } WeWorkFinanceSdk_t;
typedef struct Slice_t { char *buf; int len; } Slice_t;

static int live_slices = 0;
static int live_sdks = 0;
static unsigned long long last_seq = 0;

int FakeLiveSlices(void) { return live_slices; }
int FakeLiveSdks(void) { return live_sdks; }
unsigned long long FakeLastSeq(void) { return last_seq; }

WeWorkFinanceSdk_t *NewSdk(void) {
    WeWorkFinanceSdk_t *sdk = calloc(1, sizeof *sdk);
    if (sdk) live_sdks++;
    return sdk;
}

void DestroySdk(WeWorkFinanceSdk_t *sdk) {
    if (sdk) { free(sdk); live_sdks--; }
}

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    const char *expected = getenv("QP_FAKE_SDK_SECRET");
    if (!sdk || !corpid || !*corpid || !secret) return 10000;
    if (expected && strcmp(expected, secret) != 0) return 10000;
    sdk->initialised = 1;
    return 0;
}

Slice_t *NewSlice(void) {
    Slice_t *slice = calloc(1, sizeof *slice);
    if (slice) live_slices++;
    return slice;
}

void FreeSlice(Slice_t *slice) {
    if (!slice) return;
    free(slice->buf);
    free(slice);
    live_slices--;
}

char *GetContentFromSlice(Slice_t *slice) { return slice->buf; }
int GetSliceLen(Slice_t *slice) { return slice->len; }

/* Append text to a growing heap buffer. */
static int append(char **buf, size_t *len, size_t *cap, const char *text, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t bigger = (*cap + n + 1) * 2;
        char *grown = realloc(*buf, bigger);
        if (!grown) return -1;
        *buf = grown;
        *cap = bigger;
    }
    memcpy(*buf + *len, text, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit,
                const char *proxy, const char *passwd, int timeout, Slice_t *chatDatas) {
    (void)proxy; (void)passwd; (void)timeout;
    if (!sdk || !sdk->initialised || !chatDatas || limit == 0 || limit > 1000) return 10000;
    last_seq = seq;
    const char *path = getenv("QP_FAKE_SDK_SCRIPT");
    FILE *script = path ? fopen(path, "r") : NULL;
    if (!script) return 10003;
    char *out = NULL; size_t len = 0, cap = 0;
    const char *head = "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[";
    append(&out, &len, &cap, head, strlen(head));
    char line[65536];
    unsigned int served = 0;
    while (served < limit && fgets(line, sizeof line, script)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        unsigned long long record_seq = strtoull(line, NULL, 10);
        if (record_seq <= seq) continue;
        char *record = tab + 1;
        size_t n = strcspn(record, "\r\n");
        if (served++) append(&out, &len, &cap, ",", 1);
        append(&out, &len, &cap, record, n);
    }
    fclose(script);
    append(&out, &len, &cap, "]}", 2);
    free(chatDatas->buf);
    chatDatas->buf = out;
    chatDatas->len = (int)len;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
    if (!encrypt_key || !encrypt_msg || !msg) return 10000;
    size_t key_len = strlen(encrypt_key), hex_len = strlen(encrypt_msg);
    if (key_len == 0) return 10008;
    if (hex_len % 2) return 10002;
    char *plain = malloc(hex_len / 2 + 1);
    if (!plain) return 10003;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = hexval(encrypt_msg[2 * i]), lo = hexval(encrypt_msg[2 * i + 1]);
        if (hi < 0 || lo < 0) { free(plain); return 10002; }
        plain[i] = (char)(((hi << 4) | lo) ^ encrypt_key[i % key_len]);
    }
    plain[hex_len / 2] = '\0';
    free(msg->buf);
    msg->buf = plain;
    msg->len = (int)(hex_len / 2);
    return 0;
}
