/* Holds a log open for writing the way IIS does, for scripts/test-windows.
 *
 *   holdopen.exe write SRC DST READY RELEASE
 *       Creates DST through a handle with write access that shares reading only
 *       (FILE_SHARE_READ: the least any writer must share for a log to be
 *       readable at all), copies SRC into it, creates READY, and keeps DST open
 *       until RELEASE exists (at most 120 s).
 *   holdopen.exe probe DST
 *       Opens DST for reading without sharing writing, as a careless reader
 *       would; exits 0 when Windows refuses with a sharing violation, which
 *       shows the hold is real, 1 otherwise. */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

static int touch(const wchar_t *path)
{
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    CloseHandle(h);
    return 1;
}

static int hold(const wchar_t *src, const wchar_t *dst, const wchar_t *ready, const wchar_t *release)
{
    HANDLE in = CreateFileW(src, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (in == INVALID_HANDLE_VALUE) {
        fwprintf(stderr, L"holdopen: cannot open %ls: error %lu\n", src, GetLastError());
        return 2;
    }
    HANDLE out = CreateFileW(dst, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (out == INVALID_HANDLE_VALUE) {
        fwprintf(stderr, L"holdopen: cannot create %ls: error %lu\n", dst, GetLastError());
        return 2;
    }
    char buf[65536];
    DWORD got, put;
    while (ReadFile(in, buf, sizeof buf, &got, NULL) && got > 0) {
        if (!WriteFile(out, buf, got, &put, NULL) || put != got) {
            fwprintf(stderr, L"holdopen: cannot write %ls: error %lu\n", dst, GetLastError());
            return 2;
        }
    }
    CloseHandle(in);
    FlushFileBuffers(out);
    if (!touch(ready)) {
        fwprintf(stderr, L"holdopen: cannot create %ls: error %lu\n", ready, GetLastError());
        return 2;
    }
    for (int i = 0; i < 1200 && GetFileAttributesW(release) == INVALID_FILE_ATTRIBUTES; i++)
        Sleep(100);
    CloseHandle(out);
    return 0;
}

static int probe(const wchar_t *dst)
{
    HANDLE h = CreateFileW(dst, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE) {
        CloseHandle(h);
        fwprintf(stderr, L"holdopen: %ls opened without sharing writing: nothing holds it\n", dst);
        return 1;
    }
    DWORD err = GetLastError();
    if (err != ERROR_SHARING_VIOLATION) {
        fwprintf(stderr, L"holdopen: %ls: error %lu, not a sharing violation\n", dst, err);
        return 1;
    }
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc == 6 && wcscmp(argv[1], L"write") == 0)
        return hold(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 3 && wcscmp(argv[1], L"probe") == 0)
        return probe(argv[2]);
    fwprintf(stderr, L"usage: holdopen write SRC DST READY RELEASE | holdopen probe DST\n");
    return 2;
}
