using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DataMarket.Valuation.Shapley;

namespace DataMarket.Cli.Commands;

/// <summary>
/// A straightforward vectorised NumPy KNN-Shapley (the way a data scientist would write it), run on the same data
/// as a benchmark baseline. NumPy is never a dependency of the product: without it the baseline is skipped.
/// </summary>
internal static class NumPyBaseline
{
    private const string Script = """
        import sys, time
        import numpy as np
        folder, n, m, d, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        X = np.fromfile(folder + "/train.f32", dtype=np.float32).reshape(n, d)
        y = np.fromfile(folder + "/train.i32", dtype=np.int32)
        T = np.fromfile(folder + "/test.f32", dtype=np.float32).reshape(m, d)
        t = np.fromfile(folder + "/test.i32", dtype=np.int32)
        ranks = np.arange(1, n, dtype=np.float64)
        weight = np.minimum(k, ranks) / ranks / k
        values = np.zeros(n)
        start = time.process_time()
        for j in range(m):
            distance = ((X - T[j]) ** 2).sum(axis=1)
            order = np.argsort(distance, kind="stable")
            c = (y[order] == t[j]).astype(np.float64)
            s = np.empty(n)
            s[-1] = c[-1] * min(k, n) / (n * k)
            s[:-1] = s[-1] + np.cumsum(((c[:-1] - c[1:]) * weight)[::-1])[::-1]
            values[order] += s
        print(repr((time.process_time() - start) / m))
        """;

    public static double? CpuSecondsPerTestPoint(TrainingSet train, TestSet test, int k, out string? whyNot)
    {
        var python = new[] { "/usr/bin/python3", "python3" }.FirstOrDefault(HasNumPy);
        if (python is null)
        {
            whyNot = "no python3 with NumPy found";
            return null;
        }

        var folder = Directory.CreateTempSubdirectory("datamarket-numpy-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "train.f32"), MemoryMarshal.AsBytes(train.Features.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "train.i32"), MemoryMarshal.AsBytes(train.Classes.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "test.f32"), MemoryMarshal.AsBytes(test.Features.AsSpan()).ToArray());
            File.WriteAllBytes(Path.Combine(folder, "test.i32"), MemoryMarshal.AsBytes(test.Classes.AsSpan()).ToArray());
            var scriptPath = Path.Combine(folder, "knn_shapley.py");
            File.WriteAllText(scriptPath, Script);
            var (exitCode, output, error) = Run(python, scriptPath, folder, train.Count, test.Count, train.FeatureCount, k);
            if (exitCode != 0 || !double.TryParse(output.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
            {
                whyNot = $"the NumPy run failed: {error.Trim()}";
                return null;
            }

            whyNot = null;
            return seconds;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static bool HasNumPy(string python)
    {
        try
        {
            return Run(python, "-c", "import numpy").ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static (int ExitCode, string Output, string Error) Run(string program, params object[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(Convert.ToString(argument, CultureInfo.InvariantCulture)!);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result);
    }
}
