using System.Runtime.InteropServices;

namespace DataMarket.Valuation.Gpu;

/// <summary>Where cuBLAS was found (or why not): the file, and every place looked at, in order.</summary>
public sealed record CuBlasLookup(string? Path, IReadOnlyList<string> Searched, string Detail)
{
    public bool Found => Path is not null;

    internal IntPtr Handle { get; init; }
}

/// <summary>
/// Finds the cuBLAS of the machine for the scoring GEMM. ILGPU's <c>CuBlas</c> wrapper imports <c>libcublas.so.12</c>
/// (then .11, .10), but GPU machines now carry CUDA 13 (often only inside Python packages), whose cuBLAS keeps the
/// same C API under <c>libcublas.so.13</c>. A <see cref="NativeLibrary"/> import resolver on ILGPU.Algorithms answers
/// those imports with the library found here. Search order (first that loads wins):
/// 1. the file named by <c>DATAMARKET_CUBLAS</c>;
/// 2. <c>libcublas.so.13</c>, then <c>libcublas.so.12</c>, through the system loader (LD_LIBRARY_PATH, ld.so.cache);
/// 3. for each of those names, in <c>$CUDA_HOME/lib64</c>, <c>$CUDA_PATH/lib64</c>, <c>/usr/local/cuda/lib64</c>,
///    <c>/usr/local/cuda-*/lib64</c>, then Python wheels: <c>nvidia/cu13/lib</c> and <c>nvidia/cublas/lib</c> under
///    the site-packages of <c>$VIRTUAL_ENV</c>, <c>$CONDA_PREFIX</c>, <c>/usr/local/lib/python3*</c>,
///    <c>/usr/lib/python3*</c> and <c>~/.local/lib/python3*</c>.
/// </summary>
public static class CuBlasLibrary
{
    /// <summary>The file names tried, newest first.</summary>
    public static IReadOnlyList<string> Names { get; } = ["libcublas.so.13", "libcublas.so.12"];

    private static readonly Lock s_lock = new();
    private static CuBlasLookup? s_lookup;
    private static bool s_resolverInstalled;

    /// <summary>
    /// Every candidate in search order. <paramref name="environment"/> reads a variable; <paramref name="expand"/>
    /// lists the existing directories matching a path whose components may hold '*' (sorted, newest version last is
    /// fine: every match is tried).
    /// </summary>
    public static IReadOnlyList<string> Candidates(Func<string, string?> environment, Func<string, IEnumerable<string>> expand)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(expand);
        var candidates = new List<string>();
        if (environment("DATAMARKET_CUBLAS") is { Length: > 0 } explicitFile)
        {
            candidates.Add(explicitFile);
        }

        candidates.AddRange(Names);
        var directories = new List<string>();
        foreach (var variable in new[] { "CUDA_HOME", "CUDA_PATH" })
        {
            if (environment(variable) is { Length: > 0 } root)
            {
                directories.Add(Path.Combine(root, "lib64"));
            }
        }

        directories.Add("/usr/local/cuda/lib64");
        directories.AddRange(expand("/usr/local/cuda-*/lib64").OrderDescending(StringComparer.Ordinal));
        var pythonRoots = new List<string>();
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
        {
            if (environment(variable) is { Length: > 0 } prefix)
            {
                pythonRoots.Add(Path.Combine(prefix, "lib", "python3*"));
            }
        }

        pythonRoots.Add("/usr/local/lib/python3*");
        pythonRoots.Add("/usr/lib/python3*");
        if (environment("HOME") is { Length: > 0 } home)
        {
            pythonRoots.Add(Path.Combine(home, ".local", "lib", "python3*"));
        }

        foreach (var root in pythonRoots)
        {
            foreach (var packages in new[] { "site-packages", "dist-packages" })
            {
                foreach (var wheel in new[] { Path.Combine("nvidia", "cu13", "lib"), Path.Combine("nvidia", "cublas", "lib") })
                {
                    directories.AddRange(expand(Path.Combine(root, packages, wheel)));
                }
            }
        }

        foreach (var directory in directories.Distinct(StringComparer.Ordinal))
        {
            candidates.AddRange(Names.Select(name => Path.Combine(directory, name)));
        }

        return candidates;
    }

    /// <summary>
    /// The first candidate <paramref name="tryLoad"/> loads (it returns the handle, or zero). cuBLAS needs cuBLASLt
    /// from its own directory, so for a path the sibling <c>libcublasLt.so.N</c> is loaded first where it exists.
    /// </summary>
    public static CuBlasLookup Find(IReadOnlyList<string> candidates, Func<string, IntPtr> tryLoad)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(tryLoad);
        var searched = new List<string>();
        foreach (var candidate in candidates)
        {
            searched.Add(candidate);
            if (Path.IsPathRooted(candidate))
            {
                var name = Path.GetFileName(candidate);
                var directory = Path.GetDirectoryName(candidate)!;
                if (name.StartsWith("libcublas.so.", StringComparison.Ordinal))
                {
                    tryLoad(Path.Combine(directory, "libcublasLt" + name["libcublas".Length..]));
                }
            }

            var handle = tryLoad(candidate);
            if (handle != IntPtr.Zero)
            {
                return new CuBlasLookup(candidate, searched, $"cuBLAS from {candidate}") { Handle = handle };
            }
        }

        return new CuBlasLookup(null, searched, $"cuBLAS not found (looked for {string.Join(", ", Names)} through the loader, CUDA_HOME/CUDA_PATH, /usr/local/cuda* and Python nvidia wheels; set DATAMARKET_CUBLAS to a file)");
    }

    /// <summary>This machine's cuBLAS, looked up once per process.</summary>
    public static CuBlasLookup Locate()
    {
        lock (s_lock)
        {
            return s_lookup ??= Find(Candidates(Environment.GetEnvironmentVariable, ExpandDirectories), path =>
                NativeLibrary.TryLoad(path, out var handle) ? handle : IntPtr.Zero);
        }
    }

    /// <summary>
    /// Makes ILGPU's cuBLAS wrapper load the library <see cref="Locate"/> found, whatever version it imports by name.
    /// False (with the lookup's reason) when there is none or the resolver cannot be installed.
    /// </summary>
    internal static bool InstallResolver(out string detail)
    {
        var lookup = Locate();
        detail = lookup.Detail;
        if (!lookup.Found)
        {
            return false;
        }

        lock (s_lock)
        {
            if (s_resolverInstalled)
            {
                return true;
            }

            try
            {
                NativeLibrary.SetDllImportResolver(typeof(ILGPU.Runtime.Cuda.CuBlas).Assembly, (name, _, _) =>
                    name.Contains("cublas", StringComparison.OrdinalIgnoreCase) && !name.Contains("cublasLt", StringComparison.OrdinalIgnoreCase)
                        ? lookup.Handle
                        : IntPtr.Zero);
                s_resolverInstalled = true;
                return true;
            }
            catch (InvalidOperationException exception)
            {
                detail = $"{lookup.Detail}, but ILGPU's imports could not be redirected ({exception.Message})";
                return false;
            }
        }
    }

    /// <summary>Existing directories matching <paramref name="pattern"/>, where any component may contain '*'.</summary>
    internal static IEnumerable<string> ExpandDirectories(string pattern)
    {
        var parts = pattern.Split('/', StringSplitOptions.RemoveEmptyEntries);
        IEnumerable<string> current = [pattern.StartsWith('/') ? "/" : "."];
        foreach (var part in parts)
        {
            current = current.SelectMany(parent =>
            {
                try
                {
                    return part.Contains('*')
                        ? Directory.EnumerateDirectories(parent, part).Order(StringComparer.Ordinal).ToList()
                        : Directory.Exists(Path.Combine(parent, part)) ? [Path.Combine(parent, part)] : [];
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    return [];
                }
            });
        }

        return current.ToList();
    }
}
