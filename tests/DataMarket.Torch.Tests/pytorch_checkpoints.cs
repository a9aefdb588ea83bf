using DataMarket.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Torch.Tests;

public class pytorch_checkpoints
{
    public pytorch_checkpoints() => TorchRuntime.Initialize("cpu");

    [Fact]
    public void an_mlp_trained_in_pytorch_loads_and_our_forward_matches_pytorchs()
    {
        using var folder = new ScratchFolder();
        PyTorchReference.Run("pytorch_models.py", "mlp", folder.Path);
        var reference = PyTorchReference.ReadJson(folder.File("reference.json"));

        var (config, module) = Checkpoints.Load(folder.File("model.pt"));
        Assert.Equal(ModelConfig.Mlp, config.Architecture);
        Assert.Equal([16, 8], config.HiddenWidths);

        var inputs = PyTorchReference.Flatten(reference.GetProperty("inputs"));
        using var x = torch.tensor(inputs, [inputs.Length / 5, 5]);
        using var noGrad = no_grad();
        using var outputs = ((TabularMlp)module).forward(x);
        AssertClose(PyTorchReference.Flatten(reference.GetProperty("outputs")), outputs.data<float>().ToArray(), 1e-5f);
    }

    [Fact]
    public void a_gpt_trained_in_pytorch_loads_and_our_forward_matches_pytorchs_with_padding_masked()
    {
        using var folder = new ScratchFolder();
        PyTorchReference.Run("pytorch_models.py", "gpt", folder.Path);
        var reference = PyTorchReference.ReadJson(folder.File("reference.json"));

        var (config, module) = Checkpoints.Load(folder.File("model.pt"));
        Assert.Equal((ModelConfig.Gpt, 12, 2, 16), (config.Architecture, config.ContextLength, config.Layers, config.Width));

        var tokens = PyTorchReference.Flatten(reference.GetProperty("tokens")).Select(t => (long)t).ToArray();
        var valid = PyTorchReference.Flatten(reference.GetProperty("valid")).Select(v => v != 0).ToArray();
        using var t = torch.tensor(tokens, [4, 12]);
        using var v = torch.tensor(valid, [4, 12]);
        using var noGrad = no_grad();
        using var outputs = ((ByteGpt)module).forward(t, v);
        AssertClose(PyTorchReference.Flatten(reference.GetProperty("outputs")), outputs.data<float>().ToArray(), 1e-4f);
    }

    [Fact]
    public void a_checkpoint_with_a_mis_shaped_tensor_is_refused_naming_it()
    {
        using var folder = new ScratchFolder();
        var path = folder.File("model.safetensors");
        torch.manual_seed(1);
        Checkpoints.Save(new TabularMlp(ModelConfig.ForMlp(4, [6], 2)), ModelConfig.ForMlp(4, [6], 2), path);
        ModelConfig.ForMlp(4, [7], 2).Save(ModelConfig.PathBeside(path));

        var error = Assert.Throws<CheckpointException>(() => Checkpoints.Load(path));
        Assert.Contains("'layers.0.weight' has shape [6, 4], expected [7, 4]", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void a_checkpoint_missing_a_tensor_is_refused_naming_it()
    {
        using var folder = new ScratchFolder();
        var path = folder.File("model.safetensors");
        torch.manual_seed(1);
        var state = new TabularMlp(ModelConfig.ForMlp(4, [6], 2)).state_dict();
        state.Remove("layers.2.bias");
        TorchSharp.PyBridge.Safetensors.SaveStateDict(path, state);

        var error = Assert.Throws<CheckpointException>(() => Checkpoints.Load(path));
        Assert.Contains("'layers.2.bias' is missing (expected shape [2])", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void a_saved_gpt_round_trips_with_its_config_and_gives_the_same_logits()
    {
        using var folder = new ScratchFolder();
        var path = folder.File("gpt.safetensors");
        var config = ModelConfig.ForGpt(contextLength: 8, layers: 1, heads: 4, width: 16);
        torch.manual_seed(3);
        var original = new ByteGpt(config);
        Checkpoints.Save(original, config, path);

        var (loadedConfig, loaded) = Checkpoints.Load(path);
        Assert.Equal(4, loadedConfig.Heads);
        using var tokens = torch.randint(0, 256, [2, 8], dtype: int64);
        using var valid = torch.ones(2, 8, dtype: @bool);
        using var noGrad = no_grad();
        Assert.True(original.forward(tokens, valid).allclose(((ByteGpt)loaded).forward(tokens, valid), rtol: 0, atol: 0));
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * (1 + Math.Abs(expected[i])), $"element {i}: PyTorch {expected[i]}, ours {actual[i]}");
        }
    }
}
