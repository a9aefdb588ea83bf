using System.Diagnostics;
using System.Text.Json;

namespace DataMarket.Torch.Tests;

/// <summary>
/// Runs an independent reference script under Debian's python3-torch (/usr/bin/python3). deploy/local/infra.sh
/// installs python3-torch; when it is missing the test fails and says so (it never skips).
/// </summary>
internal static class PyTorchReference
{
    private const string Python = "/usr/bin/python3";

    public static string Run(string script, params string[] arguments)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "References", script);
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(path);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{Python} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed ({process.ExitCode}); is python3-torch installed (deploy/local/infra.sh installs it)?\n{error}");
        }

        return output.Result;
    }

    public static JsonElement ReadJson(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement;

    public static float[] Flatten(JsonElement element)
    {
        var values = new List<float>();
        Walk(element);
        return values.ToArray();

        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var child in e.EnumerateArray())
                {
                    Walk(child);
                }
            }
            else if (e.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                values.Add(e.GetBoolean() ? 1 : 0);
            }
            else
            {
                values.Add(e.GetSingle());
            }
        }
    }
}

/// <summary>A scratch folder per test, removed afterwards.</summary>
internal sealed class ScratchFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("datamarket-torch-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
