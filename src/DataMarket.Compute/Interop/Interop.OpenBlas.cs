using System.Reflection;
using System.Runtime.InteropServices;

namespace DataMarket.Compute.Interop;

/// <summary>
/// OpenBLAS entry points. The library name "openblas" is mapped by a resolver to the first of
/// <see cref="CandidateNames"/> that loads (Debian's libopenblas0-pthread installs libopenblas.so.0),
/// or to DATAMARKET_OPENBLAS_PATH when set. LAPACK routines are the Fortran symbols, so every
/// argument is passed by reference and CHARACTER arguments carry hidden trailing lengths.
/// </summary>
internal static unsafe partial class OpenBlasNative
{
    private const string Library = "openblas";

    internal const int CblasRowMajor = 101;
    internal const int CblasNoTrans = 111;
    internal const int CblasTrans = 112;

    internal static readonly string[] CandidateNames =
        ["libopenblas.so.0", "libopenblas.so", "libopenblasp-r0.3.21.so", "libopenblas.dylib", "libopenblas.dll", "openblas"];

    private static readonly Lock s_loadLock = new();
    private static nint s_handle;
    private static string? s_loadError;
    private static bool s_attempted;

    /// <summary>Loads the library once; returns false with a reason when it is not installed.</summary>
    internal static bool TryLoad(out string detail)
    {
        lock (s_loadLock)
        {
            if (!s_attempted)
            {
                s_attempted = true;
                s_loadError = Load();
                if (s_loadError is null)
                {
                    NativeLibrary.SetDllImportResolver(typeof(OpenBlasNative).Assembly, Resolve);

                    // OpenBLAS's own threads split a product by how many of them are free at that moment, and each
                    // split rounds differently: the same call gave different last bits when other work shared the
                    // process. It runs single-threaded; OpenBlasBackend parallelises over fixed tiles instead.
                    openblas_set_num_threads(1);
                }
            }
            detail = s_loadError ?? LoadedDescription;
            return s_loadError is null;
        }
    }

    internal static string LoadedDescription { get; private set; } = "";

    private static string? Load()
    {
        string? overridePath = Environment.GetEnvironmentVariable("DATAMARKET_OPENBLAS_PATH");
        var names = string.IsNullOrEmpty(overridePath) ? CandidateNames : [overridePath];
        foreach (var name in names)
        {
            if (NativeLibrary.TryLoad(name, out nint handle))
            {
                if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _) || !NativeLibrary.TryGetExport(handle, "dsyevd_", out _)
                    || !NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out _))
                {
                    NativeLibrary.Free(handle);
                    continue;
                }
                s_handle = handle;
                LoadedDescription = $"{name} ({ConfigString()})";
                return null;
            }
        }
        return $"OpenBLAS not found (tried {string.Join(", ", names)}); install libopenblas0-pthread or set DATAMARKET_OPENBLAS_PATH.";
    }

    private static string ConfigString()
    {
        if (NativeLibrary.TryGetExport(s_handle, "openblas_get_config", out nint export))
        {
            var config = ((delegate* unmanaged<byte*>)export)();
            return Marshal.PtrToStringUTF8((nint)config) ?? "unknown";
        }
        return "unknown config";
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == Library ? s_handle : 0;

    [LibraryImport(Library)]
    internal static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library)]
    internal static partial void cblas_dgemm(int order, int transA, int transB, int m, int n, int k,
        double alpha, double* a, int lda, double* b, int ldb, double beta, double* c, int ldc);

    [LibraryImport(Library)]
    internal static partial int openblas_get_num_threads();

    [LibraryImport(Library)]
    internal static partial void openblas_set_num_threads(int threads);

    [LibraryImport(Library)]
    internal static partial void dpotrf_(byte* uplo, int* n, double* a, int* lda, int* info, nuint uploLength);

    [LibraryImport(Library)]
    internal static partial void dpotrs_(byte* uplo, int* n, int* nrhs, double* a, int* lda, double* b, int* ldb, int* info, nuint uploLength);

    [LibraryImport(Library)]
    internal static partial void dsyevd_(byte* jobz, byte* uplo, int* n, double* a, int* lda, double* w,
        double* work, int* lwork, int* iwork, int* liwork, int* info, nuint jobzLength, nuint uploLength);

    /// <summary>Cholesky of a column-major matrix; throws when it is not positive definite.</summary>
    internal static void Dpotrf(byte uplo, int n, double* a, int lda)
    {
        int info;
        dpotrf_(&uplo, &n, a, &lda, &info, 1);
        if (info > 0)
        {
            throw new ArgumentException($"Matrix is not positive definite: leading minor {info} is not positive (LAPACK dpotrf).");
        }
        ThrowOnIllegalArgument(info, "dpotrf");
    }

    internal static void Dpotrs(byte uplo, int n, int nrhs, double* a, int lda, double* b, int ldb)
    {
        int info;
        dpotrs_(&uplo, &n, &nrhs, a, &lda, b, &ldb, &info, 1);
        ThrowOnIllegalArgument(info, "dpotrs");
    }

    internal static void Dsyevd(byte jobz, byte uplo, int n, double* a, int lda, double* w)
    {
        int info, lwork = -1, liwork = -1, iworkQuery;
        double workQuery;
        dsyevd_(&jobz, &uplo, &n, a, &lda, w, &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1);
        ThrowOnIllegalArgument(info, "dsyevd workspace query");
        lwork = Math.Max(1, (int)workQuery);
        liwork = Math.Max(1, iworkQuery);
        var work = new double[lwork];
        var iwork = new int[liwork];
        fixed (double* pw = work)
        fixed (int* piw = iwork)
        {
            dsyevd_(&jobz, &uplo, &n, a, &lda, w, pw, &lwork, piw, &liwork, &info, 1, 1);
        }
        if (info > 0)
        {
            throw new ArithmeticException($"LAPACK dsyevd failed to converge ({info} off-diagonal elements did not reach zero).");
        }
        ThrowOnIllegalArgument(info, "dsyevd");
    }

    private static void ThrowOnIllegalArgument(int info, string routine)
    {
        if (info < 0)
        {
            throw new ArgumentException($"LAPACK {routine} rejected argument {-info}.");
        }
    }
}
