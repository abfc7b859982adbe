/* Test-harness shim, never shipped: Rust's std on Windows (1.78 and later) gets
 * its random keys from ProcessPrng in bcryptprimitives.dll, which Windows 10 and
 * later have but Debian 12's Wine 8.0 does not (Wine added it in 8.13). Without
 * it casguard.exe cannot start under that Wine. This one draws from RtlGenRandom,
 * which Wine has. scripts/test-windows puts it in its own Wine prefix only when
 * the prefix lacks the DLL. */
#include <windows.h>

#define RtlGenRandom SystemFunction036
BOOLEAN WINAPI RtlGenRandom(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
