using DataMarket.Valuation;
using DataMarket.Valuation.Data;
using FluentValidation;

namespace DataMarket.Catalog.Application;

public sealed record CreateListingRequest(string Name, string? Description);

/// <summary>How to read an uploaded file.</summary>
public sealed record UploadOptions(string Format, string LabelColumn, string FileName);

public sealed record PostTestTaskRequest(string Name, UploadOptions Upload);

/// <summary>A buyer's proxy-model checkpoint for LoGra valuations (the body is the file).</summary>
public sealed record UploadModelRequest(string Name, string FileName);

public sealed record RequestValuationRequest(
    Guid TaskId, IReadOnlyList<Guid> ListingIds, string? Method, int? K, string? TaskType = null, string? Device = null, string? CallbackUrl = null,
    Guid? ModelId = null, string? LograMode = null);

public sealed class CreateListingRequestValidator : AbstractValidator<CreateListingRequest>
{
    public CreateListingRequestValidator()
    {
        RuleFor(r => r.Name).NotEmpty().MaximumLength(NameRules.MaxNameLength)
            .Must(n => NameRules.IsPrintable(n)).WithMessage("the name may not contain control characters");
        RuleFor(r => r.Description).MaximumLength(NameRules.MaxDescriptionLength)
            .Must(d => NameRules.IsPrintable(d, allowLineBreaks: true)).WithMessage("the description may not contain control characters");
    }
}

public sealed class UploadOptionsValidator : AbstractValidator<UploadOptions>
{
    public UploadOptionsValidator()
    {
        RuleFor(o => o.Format)
            .Must(f => DatasetFormats.TryParse(f, out _))
            .WithMessage("format must be 'csv' or 'jsonl'");
        RuleFor(o => o.LabelColumn).NotEmpty().MaximumLength(NameRules.MaxNameLength)
            .Must(n => NameRules.IsPrintable(n)).WithMessage("the label column may not contain control characters");
        RuleFor(o => o.FileName).NotEmpty().MaximumLength(NameRules.MaxFileNameLength)
            .Must(NameRules.IsPlainFileName).WithMessage("fileName must be a plain file name (no folders, no control characters)");
    }
}

public sealed class PostTestTaskRequestValidator : AbstractValidator<PostTestTaskRequest>
{
    public PostTestTaskRequestValidator()
    {
        RuleFor(r => r.Name).NotEmpty().MaximumLength(NameRules.MaxNameLength)
            .Must(n => NameRules.IsPrintable(n)).WithMessage("the name may not contain control characters");
        RuleFor(r => r.Upload).SetValidator(new UploadOptionsValidator());
    }
}

public sealed class UploadModelRequestValidator : AbstractValidator<UploadModelRequest>
{
    public UploadModelRequestValidator()
    {
        RuleFor(r => r.Name).NotEmpty().MaximumLength(NameRules.MaxNameLength)
            .Must(n => NameRules.IsPrintable(n)).WithMessage("the name may not contain control characters");
        RuleFor(r => r.FileName)
            .Must(NameRules.IsPlainFileName).WithMessage($"the file name must be a plain name of at most {NameRules.MaxFileNameLength} printable characters")
            .Must(f => f.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            .WithMessage("only .safetensors checkpoints are accepted here: a pickled PyTorch file (.pt, .pth, .bin) can run code when it is read; "
                + "convert one with safetensors.torch.save_file(torch.load('model.pt'), 'model.safetensors')");
    }
}

public sealed class RequestValuationRequestValidator : AbstractValidator<RequestValuationRequest>
{
    public const int MaxListings = 1000;
    public const int MaxCallbackUrlLength = 2000;

    public RequestValuationRequestValidator()
    {
        RuleFor(r => r.ModelId)
            .Must((r, _) => r.Method == ValuationMethods.Logra)
            .WithMessage("a model is used by method 'logra' only")
            .When(r => r.ModelId is not null);
        RuleFor(r => r.LograMode)
            .Must((r, m) => r.Method == ValuationMethods.Logra && m is "dot" or "cosine" or "self")
            .WithMessage(r => r.Method == ValuationMethods.Logra
                ? $"unknown LoGra mode '{r.LograMode}' (supported: dot, cosine, self)"
                : "lograMode is used by method 'logra' only")
            .When(r => r.LograMode is not null);
        RuleFor(r => r.TaskId).NotEmpty();
        RuleFor(r => r.ListingIds).NotEmpty().WithMessage("name at least one listing to value");
        RuleFor(r => r.ListingIds.Count).LessThanOrEqualTo(MaxListings).OverridePropertyName("listingIds");
        RuleFor(r => r.ListingIds)
            .Must(ids => ids.Distinct().Count() == ids.Count)
            .WithMessage("a listing is named more than once");
        RuleFor(r => r.Method)
            .Must(m => m is null || ValuationMethods.All.Contains(m))
            .WithMessage(r => $"unknown method '{r.Method}' (supported: {string.Join(", ", ValuationMethods.All)})");
        RuleFor(r => r.K).InclusiveBetween(1, 1000).When(r => r.K is not null);
        RuleFor(r => r.Device)
            .Must(d => d is null or "auto" or "cpu" or "gpu")
            .WithMessage(r => $"unknown device '{r.Device}' (supported: auto, cpu, gpu)");
        RuleFor(r => r.TaskType)
            .Must(t => t is null || ValuationMethods.TaskTypes.Contains(t))
            .WithMessage(r => $"unknown task type '{r.TaskType}' (supported: {string.Join(", ", ValuationMethods.TaskTypes)})");
        RuleFor(r => r.CallbackUrl)
            .MaximumLength(MaxCallbackUrlLength)
            .Must(url => Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" && uri.UserInfo.Length == 0 && uri.Fragment.Length == 0)
            .WithMessage("the callback URL must be an absolute https URL without user name, password or fragment")
            .When(r => r.CallbackUrl is not null);
        RuleFor(r => r.TaskType)
            .Must(t => t is null or ValuationMethods.Classification)
            .When(r => r.Method is not null && r.Method != ValuationMethods.KnnShapley)
            .WithMessage(r => $"method '{r.Method}' values classification tasks only");
    }
}
