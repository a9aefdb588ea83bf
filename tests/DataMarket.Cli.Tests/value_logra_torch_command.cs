using System.Globalization;
using DataMarket.Torch.Tests;

namespace DataMarket.Cli.Tests;

public sealed class value_logra_torch_command
{
    private static double[] Values(string path) => File.ReadAllLines(path).Skip(1)
        .Select(l => double.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public async Task mode_self_scores_flipped_rows_above_clean_ones()
    {
        using var folder = new TempFolder();
        var random = new Random(3);
        var text = new System.Text.StringBuilder("x0,x1,label\n");
        var flipped = new List<int>();
        for (var i = 0; i < 60; i++)
        {
            var c = i % 2;
            var label = i % 10 == 0 ? 1 - c : c;
            if (label != c)
            {
                flipped.Add(i);
            }

            text.Append(CultureInfo.InvariantCulture, $"{3 * c + random.NextDouble():F3},{2 * c + random.NextDouble():F3},{"ab"[label]}\n");
        }

        var data = folder.File("train.csv", text.ToString());
        var output = folder.File("self.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync("value", "logra", "--train", data, "--test", data, "--mode", "self", "--rank", "8", "--epochs", "10", "--out", output);

        Assert.True(exitCode == 0, error);
        Assert.Contains("torch: torch device cpu", error, StringComparison.Ordinal);
        var values = Values(output);
        Assert.Equal(60, values.Length);
        Assert.All(values, v => Assert.True(v >= 0 && double.IsFinite(v), $"self-influence {v}"));
        var clean = Enumerable.Range(0, 60).Except(flipped).Select(i => values[i]).Average();
        Assert.True(flipped.Select(i => values[i]).Average() > 2 * clean, "flipped rows should stand out");
    }

    [Fact]
    public async Task values_data_with_a_state_dict_trained_in_pytorch_and_refuses_data_of_another_width()
    {
        using var folder = new TempFolder();
        PyTorchReference.Run("pytorch_models.py", "mlp", folder.Path);
        var inputs = PyTorchReference.ReadJson(folder.File("reference.json")).GetProperty("inputs").EnumerateArray()
            .Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        var csv = new System.Text.StringBuilder("a,b,c,d,e,label\n");
        foreach (var row in inputs)
        {
            // The same labels the PyTorch model was trained on: (x0 > 0) + (x1 > 0).
            var label = (row[0] > 0 ? 1 : 0) + (row[1] > 0 ? 1 : 0);
            csv.AppendLine(string.Join(',', row.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "," + label);
        }

        var data = folder.File("data.csv", csv.ToString());
        var output = folder.File("values.csv");
        var (exitCode, _, error) = await CliRunner.RunAsync("value", "logra", "--model", folder.File("model.pt"), "--train", data, "--test", data, "--rank", "4", "--out", output);
        Assert.True(exitCode == 0, error);
        Assert.Contains($"scoring [####################] {inputs.Length}/{inputs.Length} test points", error, StringComparison.Ordinal);
        var values = Values(output);
        Assert.Equal(inputs.Length, values.Length);
        Assert.All(values, v => Assert.True(double.IsFinite(v)));
        // Valued against itself, the average training row helps: the mean self-term dominates.
        Assert.True(values.Average() > 0);

        var narrow = folder.File("narrow.csv", "a,b,c,d,label\n1,2,3,4,0\n");
        var (refused, _, why) = await CliRunner.RunAsync("value", "logra", "--model", folder.File("model.pt"), "--train", narrow, "--test", narrow, "--out", folder.File("x.csv"));
        Assert.Equal(2, refused);
        Assert.Contains("model.pt: the model takes 5 features but the data has 4", why, StringComparison.Ordinal);
        Assert.False(File.Exists(folder.File("x.csv")));
    }
}
